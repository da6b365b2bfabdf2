/** The MXBean interfaces blockfuse registers in the platform MBeanServer (domain org.blockfuse). */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package org.blockfuse.management;
