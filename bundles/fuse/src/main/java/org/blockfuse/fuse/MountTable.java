package org.blockfuse.fuse;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Reads /proc/self/mountinfo: is a path a mount point, of which type, on which device. */
public final class MountTable {
    private static final Path MOUNTINFO = Path.of("/proc/self/mountinfo");

    /** One mount: the device minor (the FUSE connection number for fuse mounts) and its type. */
    public record Entry(Path mountPoint, int major, int minor, String fsType, String source) {
        public boolean isFuse() {
            return fsType.equals("fuse") || fsType.startsWith("fuse.");
        }
    }

    private MountTable() {
    }

    /** The topmost mount at exactly this path, if any. */
    public static Optional<Entry> find(Path mountPoint) throws IOException {
        String wanted = mountPoint.toAbsolutePath().normalize().toString();
        Entry found = null;
        List<String> lines = Files.readAllLines(MOUNTINFO, StandardCharsets.UTF_8);
        for (String line : lines) {
            // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
            String[] f = line.split(" ");
            if (f.length < 10 || !unescape(f[4]).equals(wanted)) {
                continue;
            }
            int dash = line.indexOf(" - ");
            String[] tail = line.substring(dash + 3).split(" ");
            String[] dev = f[2].split(":");
            found = new Entry(Path.of(wanted), Integer.parseInt(dev[0]), Integer.parseInt(dev[1]), tail[0],
                    unescape(tail[1]));
        }
        return Optional.ofNullable(found);
    }

    /**
     * The device minors of every mount with major 0 in this mount namespace: for FUSE mounts, the
     * connection numbers still mounted. A lazy unmount by someone else removes a connection from
     * this set at once, even while clients still hold files open on the detached mount.
     */
    public static Set<Integer> anonymousMinors() throws IOException {
        Set<Integer> minors = new HashSet<>();
        for (String line : Files.readAllLines(MOUNTINFO, StandardCharsets.UTF_8)) {
            String[] f = line.split(" ", 4); // id parent major:minor ...
            if (f.length >= 3 && f[2].startsWith("0:")) {
                minors.add(Integer.parseInt(f[2].substring(2)));
            }
        }
        return minors;
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    private static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
