package org.blockfuse.fuse;

/**
 * What the file looks like and what clients may do with it.
 * @param writable   writes, truncate and fallocate are allowed
 * @param growable   writes and fallocate past the end grow the image
 * @param allowOther the kernel delivers other users' requests (the mode bits then decide)
 * @param uid        owner of the file (the mounting user)
 * @param gid        group of the file
 * @param passthrough answer opens with FUSE passthrough to the image where the kernel grants it
 *                    (the caller decided every semantic holds: see the README)
 * @param directIo   answer opens with FOPEN_DIRECT_IO: the kernel keeps no page cache for the
 *                    exported file, every read and write of every client reaches blockfuse
 *                    (fuse-cache = direct); otherwise buffered clients share the kernel's page cache
 *                    for it (fuse-cache = page). Passed-through opens are the kernel's either way.
 */
public record ExportPolicy(boolean writable, boolean growable, boolean allowOther, int uid, int gid, boolean passthrough,
        boolean directIo) {

    /** With the page cache. */
    public ExportPolicy(boolean writable, boolean growable, boolean allowOther, int uid, int gid, boolean passthrough) {
        this(writable, growable, allowOther, uid, gid, passthrough, false);
    }

    /** Without passthrough. */
    public ExportPolicy(boolean writable, boolean growable, boolean allowOther, int uid, int gid) {
        this(writable, growable, allowOther, uid, gid, false);
    }

    /**
     * Permission bits QEMU gives an export: 0600 writable, 0400 read-only, whatever allow-other says.
     * allow-other only lets the kernel deliver other users' requests; these bits (checked by the
     * kernel with default_permissions) decide, so an export is private until its owner opens it.
     */
    public int initialMode() {
        return writable ? 0600 : 0400;
    }
}
