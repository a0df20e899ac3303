/**
 * Not API: {@link org.metakernels.internal.Internals}, through which the core's packages reach
 * each other's non-public members. Left out of the published Javadoc; may change at any time.
 */
package org.metakernels.internal;
