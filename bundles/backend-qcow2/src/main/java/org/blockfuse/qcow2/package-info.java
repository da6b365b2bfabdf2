/** Read-only qcow2 support: what the shell and other bundles may ask about qcow2 images. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package org.blockfuse.qcow2;
