package org.blockfuse.nbd.internal;

/**
 * The NBD protocol's numbers (doc/proto.md of the NBD project: fixed newstyle handshake,
 * structured replies, metadata contexts). All fields are big-endian on the wire.
 */
final class NbdWire {
    private NbdWire() {
    }

    // ---- handshake ----
    static final long INIT_MAGIC = 0x4e42444d41474943L; // "NBDMAGIC"
    static final long OPTS_MAGIC = 0x49484156454f5054L; // "IHAVEOPT"
    static final long OLDSTYLE_MAGIC = 0x0000420281861253L;
    static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;

    static final int FLAG_FIXED_NEWSTYLE = 1;
    static final int FLAG_NO_ZEROES = 1 << 1;
    static final int CLIENT_FIXED_NEWSTYLE = 1;
    static final int CLIENT_NO_ZEROES = 1 << 1;

    static final int OPT_STARTTLS = 5;
    static final int OPT_GO = 7;
    static final int OPT_STRUCTURED_REPLY = 8;
    static final int OPT_SET_META_CONTEXT = 10;

    static final int REP_ACK = 1;
    static final int REP_INFO = 3;
    static final int REP_META_CONTEXT = 4;
    static final int REP_ERR_BIT = 1 << 31;
    static final int REP_ERR_UNSUP = REP_ERR_BIT + 1;
    static final int REP_ERR_POLICY = REP_ERR_BIT + 2;
    static final int REP_ERR_INVALID = REP_ERR_BIT + 3;
    static final int REP_ERR_TLS_REQD = REP_ERR_BIT + 5;
    static final int REP_ERR_UNKNOWN = REP_ERR_BIT + 6;
    static final int REP_ERR_SHUTDOWN = REP_ERR_BIT + 7;
    static final int REP_ERR_BLOCK_SIZE_REQD = REP_ERR_BIT + 8;

    static final int INFO_EXPORT = 0;
    static final int INFO_BLOCK_SIZE = 3;

    /** Option replies are small; a longer one is a broken or hostile server. */
    static final int MAX_OPTION_REPLY = 64 * 1024;

    // ---- transmission flags (NBD_INFO_EXPORT) ----
    static final int TF_HAS_FLAGS = 1;
    static final int TF_READ_ONLY = 1 << 1;
    static final int TF_SEND_FLUSH = 1 << 2;
    static final int TF_SEND_FUA = 1 << 3;
    static final int TF_SEND_TRIM = 1 << 5;
    static final int TF_SEND_WRITE_ZEROES = 1 << 6;
    static final int TF_CAN_MULTI_CONN = 1 << 8;
    static final int TF_SEND_FAST_ZERO = 1 << 11;

    // ---- requests ----
    static final int REQUEST_MAGIC = 0x25609513;
    static final int REQUEST_SIZE = 28;
    static final int CMD_READ = 0;
    static final int CMD_WRITE = 1;
    static final int CMD_DISC = 2;
    static final int CMD_FLUSH = 3;
    static final int CMD_TRIM = 4;
    static final int CMD_WRITE_ZEROES = 6;
    static final int CMD_BLOCK_STATUS = 7;
    static final int CMD_FLAG_NO_HOLE = 1 << 1;

    // ---- replies ----
    static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    static final int SIMPLE_REPLY_SIZE = 16;
    static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
    static final int STRUCTURED_REPLY_SIZE = 20;
    static final int REPLY_FLAG_DONE = 1;
    static final int REPLY_TYPE_NONE = 0;
    static final int REPLY_TYPE_OFFSET_DATA = 1;
    static final int REPLY_TYPE_OFFSET_HOLE = 2;
    static final int REPLY_TYPE_BLOCK_STATUS = 5;
    static final int REPLY_TYPE_ERROR_BIT = 1 << 15;
    static final int REPLY_TYPE_ERROR = REPLY_TYPE_ERROR_BIT + 1;
    static final int REPLY_TYPE_ERROR_OFFSET = REPLY_TYPE_ERROR_BIT + 2;

    /** base:allocation status bits. */
    static final int STATE_HOLE = 1;
    static final int STATE_ZERO = 1 << 1;

    // ---- errors (the protocol's own numbering, which happens to be Linux's) ----
    static final int EPERM = 1;
    static final int EIO = 5;
    static final int ENOMEM = 12;
    static final int EINVAL = 22;
    static final int ENOSPC = 28;
    static final int EOVERFLOW = 75;
    static final int ENOTSUP = 95;
    static final int ESHUTDOWN = 108;

    /** The payload most servers accept when they state no maximum (the protocol's suggestion). */
    static final int DEFAULT_MAX_PAYLOAD = 32 << 20;

    static String command(int type) {
        switch (type) {
            case CMD_READ: return "READ";
            case CMD_WRITE: return "WRITE";
            case CMD_DISC: return "DISC";
            case CMD_FLUSH: return "FLUSH";
            case CMD_TRIM: return "TRIM";
            case CMD_WRITE_ZEROES: return "WRITE_ZEROES";
            case CMD_BLOCK_STATUS: return "BLOCK_STATUS";
            default: return "command " + type;
        }
    }

    static String error(int code) {
        switch (code) {
            case EPERM: return "EPERM";
            case EIO: return "EIO";
            case ENOMEM: return "ENOMEM";
            case EINVAL: return "EINVAL";
            case ENOSPC: return "ENOSPC";
            case EOVERFLOW: return "EOVERFLOW";
            case ENOTSUP: return "ENOTSUP";
            case ESHUTDOWN: return "ESHUTDOWN";
            default: return "error " + code;
        }
    }

    static String optionError(int type) {
        switch (type) {
            case REP_ERR_UNSUP: return "not supported";
            case REP_ERR_POLICY: return "refused by the server's policy";
            case REP_ERR_INVALID: return "invalid";
            case REP_ERR_TLS_REQD: return "the server requires TLS";
            case REP_ERR_UNKNOWN: return "no such export";
            case REP_ERR_SHUTDOWN: return "the server is shutting down";
            case REP_ERR_BLOCK_SIZE_REQD: return "the server requires block size negotiation";
            default: return "error reply 0x" + Integer.toHexString(type);
        }
    }

    static String flags(int f) {
        StringBuilder b = new StringBuilder();
        append(b, f, TF_READ_ONLY, "read-only");
        append(b, f, TF_SEND_FLUSH, "flush");
        append(b, f, TF_SEND_FUA, "fua");
        append(b, f, TF_SEND_TRIM, "trim");
        append(b, f, TF_SEND_WRITE_ZEROES, "write-zeroes");
        append(b, f, TF_SEND_FAST_ZERO, "fast-zero");
        append(b, f, TF_CAN_MULTI_CONN, "multi-conn");
        return b.length() == 0 ? "none" : b.toString();
    }

    private static void append(StringBuilder b, int flags, int bit, String name) {
        if ((flags & bit) != 0) {
            b.append(b.length() == 0 ? "" : ",").append(name);
        }
    }
}
