/** The service interfaces between blockfuse's bundles: backends, transports and the export service. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package org.blockfuse.api;
