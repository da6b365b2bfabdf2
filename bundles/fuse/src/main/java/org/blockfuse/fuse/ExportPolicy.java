package org.blockfuse.fuse;

/**
 * What the file looks like and what clients may do with it.
 * @param writable   writes, truncate and fallocate are allowed
 * @param growable   writes and fallocate past the end grow the image
 * @param allowOther other users than the owner may open the file
 * @param uid        owner of the file (the mounting user)
 * @param gid        group of the file
 */
public record ExportPolicy(boolean writable, boolean growable, boolean allowOther, int uid, int gid) {

    /** Permission bits QEMU gives an export: owner rw (or r), and the same for everyone with allow-other. */
    public int initialMode() {
        int owner = writable ? 0600 : 0400;
        return allowOther ? owner | (owner >> 3) | (owner >> 6) : owner;
    }
}
