/** Every native call blockfuse makes (libc, mount, ioctl, io_uring syscalls, mmap), over jnr-ffi. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package org.blockfuse.nativeio;
