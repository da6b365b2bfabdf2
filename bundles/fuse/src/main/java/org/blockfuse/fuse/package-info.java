/** The FUSE kernel ABI, mounting, INIT negotiation and the request handler of a single-file export. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package org.blockfuse.fuse;
