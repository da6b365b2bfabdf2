package org.blockfuse.legacy;

import static org.junit.jupiter.api.Assertions.*;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Random;

import org.blockfuse.api.BackendRequest;
import org.blockfuse.fuse.ExportPolicy;
import org.blockfuse.fuse.FuseExport;
import org.blockfuse.fuse.MountTable;
import org.blockfuse.raw.RawBackendFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A real mount through the legacy transport: bytes written through the file land in the image. */
class LegacyMountTest {
    @TempDir
    Path dir;

    @Test
    void writesReadBackAndReachTheImage() throws Exception {
        Path image = dir.resolve("disk.raw");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        Path target = dir.resolve("export.img");
        FuseExport export = FuseExport.start("t", new RawBackendFactory().open(new BackendRequest(image, true, Map.of())),
                target, new ExportPolicy(true, false, true, 0, 0), image.toString(), Map.of("workers", "2"),
                new LegacyTransport(), reason -> { });
        try {
            assertEquals(16 << 20, Files.size(target));
            assertTrue(MountTable.find(target).isPresent());
            byte[] pattern = new byte[128 << 10];
            new Random(7).nextBytes(pattern);
            try (FileChannel ch = FileChannel.open(target, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(pattern), 3 << 20);
                ch.force(false);
                ByteBuffer back = ByteBuffer.allocate(pattern.length);
                ch.read(back, 3 << 20);
                assertArrayEquals(pattern, back.array());
            }
            assertTrue(export.requests() > 0);
        } finally {
            export.close();
        }
        assertFalse(MountTable.find(target).isPresent());
        assertFalse(Files.exists(target), "the mountpoint we created is removed again");
        byte[] raw = Files.readAllBytes(image);
        byte[] expected = new byte[128 << 10];
        new Random(7).nextBytes(expected);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], raw[(3 << 20) + i], "byte " + i);
        }
    }
}
