package org.blockfuse.qcow2.command;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.blockfuse.qcow2.Capability;
import org.blockfuse.qcow2.Qcow2Snapshot;
import org.blockfuse.qcow2.Qcow2Snapshots;
import org.junit.jupiter.api.Test;

class SnapshotListCommandTest {

    @Test
    void listsSnapshotsAsTable() throws Exception {
        Capability.requireTools("qemu-img");
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "qcow2-cmd-");
        try {
            Path img = dir.resolve("s.qcow2");
            run("qemu-img", "create", "-q", "-f", "qcow2", img.toString(), "1M");
            run("qemu-img", "snapshot", "-c", "before-upgrade", img.toString());
            run("qemu-img", "snapshot", "-c", "after", img.toString());

            List<Qcow2Snapshot> snapshots = Qcow2Snapshots.list(img);
            assertEquals(List.of("1", "2"), snapshots.stream().map(Qcow2Snapshot::id).toList());
            assertEquals(List.of("before-upgrade", "after"), snapshots.stream().map(Qcow2Snapshot::name).toList());
            assertEquals(1 << 20, snapshots.get(0).diskSize());

            SnapshotListCommand command = new SnapshotListCommand();
            command.image = img.toString();
            command.noFormat = true;
            String out = capture(command);
            List<List<String>> rows = out.lines()
                    .map(l -> java.util.Arrays.stream(l.split("\t")).map(String::trim).toList()).toList();
            assertEquals(List.of("1", "before-upgrade", "0"), rows.get(0).subList(0, 3), out);
            assertEquals(List.of("2", "after", "0"), rows.get(1).subList(0, 3), out);
            assertEquals(2, rows.size(), out);
        } finally {
            try (var files = Files.walk(dir)) {
                for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private static String capture(SnapshotListCommand command) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            command.execute();
        } finally {
            System.setOut(old);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, out);
    }
}
