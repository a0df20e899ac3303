package org.metakernels.graph;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.metakernels.runtime.MetakernelsException;
import org.metakernels.tensor.DType;
import org.metakernels.tensor.Device;

/**
 * A heterogeneous graph: typed nodes ({@code paper}, {@code author}, …, each type numbered from 0)
 * and typed relations between them ({@code paper-writtenBy-author}), each stored as a sparse
 * matrix R[s, d] = the number of (s, d) links (repeated links count), built from a per-relation
 * COO edge list. A relation is read in either direction (the reverse is its transpose), so a
 * meta-path is a list of node types such as paper → author → paper, composed by
 * {@link #metaPathMatrix} (SpGEMM, path counts) or applied as an operator by {@link #metaPath}
 * (materialised or as the factorised chain, see {@link MetaPath}).
 *
 * <p>Immutable after building; lives on the Java heap (the graphs made from it own device memory).
 *
 * <pre>{@code
 * HeteroGraph h = HeteroGraph.builder()
 *     .nodeType("paper", 4019).nodeType("author", 7167).nodeType("subject", 60)
 *     .relation("writes", "paper", "author", paperIds, authorIds)
 *     .relation("about", "paper", "subject", paperIds2, subjectIds)
 *     .build();
 * SparseMatrix pap = h.metaPathMatrix("paper", "author", "paper");          // [4019, 4019] counts
 * }</pre>
 */
public final class HeteroGraph {
  private final Map<String, Integer> nodeCounts;
  private final List<Relation> relations;

  /**
   * One typed relation.
   *
   * @param name the relation's name ("writes")
   * @param sourceType the type of its rows
   * @param targetType the type of its columns
   * @param matrix R [count(sourceType), count(targetType)], link counts
   */
  public record Relation(String name, String sourceType, String targetType, SparseMatrix matrix) {
    /**
     * "paper-writes-author".
     *
     * @return the triple as text
     */
    public String key() {
      return sourceType + "-" + name + "-" + targetType;
    }
  }

  private HeteroGraph(Map<String, Integer> nodeCounts, List<Relation> relations) {
    this.nodeCounts = Collections.unmodifiableMap(new LinkedHashMap<>(nodeCounts));
    this.relations = List.copyOf(relations);
  }

  /**
   * A new builder. {@code HeteroGraph.builder().nodeType("paper", 3).build()}.
   *
   * @return an empty builder
   */
  public static Builder builder() {
    return new Builder();
  }

  /** Declares node types and relations, in any order (types before the relations that use them). */
  public static final class Builder {
    private final Map<String, Integer> counts = new LinkedHashMap<>();
    private final List<Relation> rels = new ArrayList<>();

    private Builder() {}

    /**
     * Declares a node type with {@code count} nodes, numbered 0 … count − 1.
     *
     * @param type its name
     * @param count the number of nodes, ≥ 0
     * @return this builder
     * @throws MetakernelsException for a repeated type or a negative count
     */
    public Builder nodeType(String type, long count) {
      if (type == null || type.isEmpty()) throw new MetakernelsException("HeteroGraph: a node type needs a name, got '" + type + "'");
      if (counts.containsKey(type))
        throw new MetakernelsException("HeteroGraph: node type '" + type + "' declared twice");
      if (count < 0 || count > Integer.MAX_VALUE - 8)
        throw new MetakernelsException("HeteroGraph: node type '" + type + "' has count " + count);
      counts.put(type, (int) count);
      return this;
    }

    /**
     * A relation from COO lists: link e goes from node {@code src[e]} of {@code sourceType} to node
     * {@code dst[e]} of {@code targetType}.
     *
     * @param name the relation's name
     * @param sourceType a declared type
     * @param targetType a declared type
     * @param src source ids
     * @param dst target ids, as many
     * @return this builder
     * @throws MetakernelsException for an undeclared type, a repeated relation or an id out of range
     *     (the message names the relation)
     */
    public Builder relation(String name, String sourceType, String targetType, long[] src, long[] dst) {
      return relation(name, sourceType, targetType, src, dst, null);
    }

    /**
     * A weighted relation from COO lists (weights summed over repeated links).
     *
     * @param name the relation's name
     * @param sourceType a declared type
     * @param targetType a declared type
     * @param src source ids
     * @param dst target ids, as many
     * @param weight one per link, or null for 1
     * @return this builder
     * @throws MetakernelsException for an undeclared type, a repeated relation or an id out of range
     */
    public Builder relation(
        String name, String sourceType, String targetType, long[] src, long[] dst, double[] weight) {
      String what = "HeteroGraph relation " + sourceType + "-" + name + "-" + targetType;
      Integer ns = counts.get(sourceType), nt = counts.get(targetType);
      if (ns == null || nt == null)
        throw new MetakernelsException(what + ": undeclared node type '" + (ns == null ? sourceType : targetType)
            + "' (declared: " + counts.keySet() + ")");
      for (Relation r : rels)
        if (r.name().equals(name) && r.sourceType().equals(sourceType) && r.targetType().equals(targetType))
          throw new MetakernelsException(what + ": declared twice");
      SparseMatrix m;
      try {
        m = SparseMatrix.fromCoo(ns, nt, src, dst, weight);
      } catch (MetakernelsException e) {
        throw new MetakernelsException(what + " (" + ns + " x " + nt + " nodes): " + e.getMessage());
      }
      rels.add(new Relation(name, sourceType, targetType, m));
      return this;
    }

    /**
     * The graph.
     *
     * @return the heterogeneous graph
     */
    public HeteroGraph build() {
      return new HeteroGraph(counts, rels);
    }
  }

  /**
   * The node types and their counts, in declaration order.
   *
   * @return type → count
   */
  public Map<String, Integer> nodeTypes() {
    return nodeCounts;
  }

  /**
   * The number of nodes of a type.
   *
   * @param type a declared type
   * @return its count
   * @throws MetakernelsException for an unknown type
   */
  public int numNodes(String type) {
    Integer n = nodeCounts.get(type);
    if (n == null)
      throw new MetakernelsException("HeteroGraph: no node type '" + type + "' (have " + nodeCounts.keySet() + ")");
    return n;
  }

  /**
   * The relations, in declaration order.
   *
   * @return the relations
   */
  public List<Relation> relations() {
    return relations;
  }

  /**
   * The adjacency from type {@code from} to type {@code to}: the one relation declared between
   * them, transposed when declared the other way. {@code h.adjacency("subject", "paper")} is
   * [60, 4019] for a paper-about-subject relation.
   *
   * @param from the row type
   * @param to the column type
   * @return [count(from), count(to)]
   * @throws MetakernelsException when no relation, or more than one, joins the two types
   */
  public SparseMatrix adjacency(String from, String to) {
    SparseMatrix found = null;
    int hits = 0;
    for (Relation r : relations) {
      if (r.sourceType().equals(from) && r.targetType().equals(to)) {
        found = r.matrix();
        hits++;
      } else if (r.sourceType().equals(to) && r.targetType().equals(from)) {
        found = r.matrix().transpose();
        hits++;
      }
    }
    if (hits == 0)
      throw new MetakernelsException(
          "HeteroGraph: no relation between '" + from + "' and '" + to + "' (relations: " + keys() + ")");
    if (hits > 1)
      throw new MetakernelsException("HeteroGraph: " + hits + " relations between '" + from + "' and '" + to + "' ("
          + keys() + "); name one through relations()");
    return found;
  }

  private List<String> keys() {
    List<String> k = new ArrayList<>();
    for (Relation r : relations) k.add(r.key());
    return k;
  }

  /**
   * The relation matrices along a path of node types: for ("paper", "author", "paper") the list
   * [R_pa, R_ap].
   *
   * @param types at least two node types
   * @return one matrix per step
   * @throws MetakernelsException for fewer than two types or a step without a relation
   */
  public List<SparseMatrix> pathFactors(List<String> types) {
    if (types.size() < 2)
      throw new MetakernelsException("HeteroGraph: a meta-path needs two or more types, got " + types);
    List<SparseMatrix> f = new ArrayList<>();
    for (int i = 0; i + 1 < types.size(); i++) f.add(adjacency(types.get(i), types.get(i + 1)));
    return f;
  }

  /**
   * The meta-path matrix by SpGEMM: M[i, j] = the number of path instances from node i of the first
   * type to node j of the last (deterministic, see {@link SparseMatrix#multiply}).
   * {@code h.metaPathMatrix("paper", "author", "paper")}: P–A–P co-author counts.
   *
   * @param types the node types along the path
   * @return [count(first), count(last)], path counts ({@link SparseMatrix#binarized()} for 0/1)
   * @throws MetakernelsException for a step without a relation
   */
  public SparseMatrix metaPathMatrix(String... types) {
    List<SparseMatrix> f = pathFactors(List.of(types));
    SparseMatrix acc = f.get(0);
    for (int i = 1; i < f.size(); i++) acc = acc.multiply(f.get(i));
    return acc;
  }

  /**
   * The meta-path as an aggregation operator over the first (= last) type, materialised or chained
   * (see {@link MetaPath}). {@code h.metaPath(List.of("paper", "subject", "paper"), Normalization.GCN,
   * false, Strategy.AUTO, DType.F32, Device.CPU)}.
   *
   * @param types the node types along the path, first = last
   * @param norm the normalisation
   * @param binary 0/1 weights (true) or path counts (false)
   * @param strategy materialised, chained or the cheaper
   * @param dtype F32 or F64
   * @param device where the features live
   * @return the operator (close it)
   * @throws MetakernelsException for a path that does not return to its type or lacks a relation
   */
  public MetaPath metaPath(List<String> types, MetaPath.Normalization norm, boolean binary, MetaPath.Strategy strategy,
      DType dtype, Device device) {
    List<SparseMatrix> factors = pathFactors(types);  // checks the length and every step first
    if (!types.get(0).equals(types.get(types.size() - 1)))
      throw new MetakernelsException("HeteroGraph: a meta-path operator must end on its first type, got " + types);
    StringBuilder name = new StringBuilder();
    for (String t : types) name.append(Character.toUpperCase(t.charAt(0)));
    return MetaPath.of(name.toString(), factors, norm, binary, strategy, dtype, device);
  }

  /**
   * Types, counts and relations with their non-zeros, for messages.
   *
   * @return the description
   */
  public String describe() {
    StringBuilder sb = new StringBuilder("HeteroGraph(").append(nodeCounts);
    for (Relation r : relations) sb.append(", ").append(r.key()).append(" nnz=").append(r.matrix().nnz());
    return sb.append(")").toString();
  }

  @Override
  public String toString() {
    return describe();
  }
}
