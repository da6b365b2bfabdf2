package org.blockfuse.fuse.internal;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Who holds files open on a mount, from /proc/PID/fdinfo (the mnt_id line): for the log line
 * naming the clients a drained connection cut off. Reads no file through the mount, so it cannot
 * block on a connection that stopped answering.
 */
public final class OpenFiles {
    private static final Path PROC = Path.of("/proc");

    private OpenFiles() {
    }

    /** The mount id of the mount {@code fd} is on (this process's descriptor), or -1. */
    static int mountIdOf(int fd) {
        try {
            return parseMountId(Files.readString(PROC.resolve("self/fdinfo/" + fd)));
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** "comm[pid] fd N, ..." for every open file on mount {@code mountId}; "nobody" when none is found. */
    public static String holders(int mountId) {
        if (mountId < 0) {
            return "(unknown: the mount id could not be read)";
        }
        List<String> found = new ArrayList<>();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(PROC, p -> p.getFileName().toString().chars()
                .allMatch(Character::isDigit))) {
            for (Path proc : procs) {
                collect(proc, mountId, found);
            }
        } catch (IOException e) {
            return "(unknown: " + e.getMessage() + ")";
        }
        return found.isEmpty() ? "nobody found in /proc" : String.join(", ", found);
    }

    private static void collect(Path proc, int mountId, List<String> found) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fdinfo"))) {
            for (Path fd : fds) {
                try {
                    if (parseMountId(Files.readString(fd)) == mountId) {
                        found.add(comm(proc) + "[" + proc.getFileName() + "] fd " + fd.getFileName());
                    }
                } catch (IOException | RuntimeException e) {
                    // the fd or the process went away meanwhile
                }
            }
        } catch (IOException e) {
            // the process went away, or is not ours to look at
        }
    }

    private static String comm(Path proc) {
        try {
            return Files.readString(proc.resolve("comm")).trim();
        } catch (IOException e) {
            return "?";
        }
    }

    static int parseMountId(String fdinfo) {
        for (String line : fdinfo.split("\n")) {
            if (line.startsWith("mnt_id:")) {
                return Integer.parseInt(line.substring(7).trim());
            }
        }
        return -1;
    }
}
