/**
 * Readers and writers for graph data on disk: {@link org.metakernels.io.NumPy} ({@code .npy},
 * {@code .npz} and scipy's sparse {@code .npz} layouts) and {@link org.metakernels.io.EdgeList}
 * (plain text or CSV edge lists). Malformed files throw {@link java.io.IOException} naming the file.
 *
 * <pre>{@code
 * SparseMatrix pap = NumPy.readSparse(Path.of("acm/pap.npz"));
 * EdgeList ps = EdgeList.read(Path.of("acm/ps.txt"));
 * }</pre>
 */
package org.metakernels.io;
