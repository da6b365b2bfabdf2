package org.blockfuse.qcow2.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.blockfuse.qcow2.Capability;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Backing and external data files named inside an image: only regular files and block devices, checked on
 * the opened descriptor, and the {@code backing-policy} option (follow, same-dir, none).
 */
class BackingPolicyTest {

    private static final Duration NO_HANG = Duration.ofSeconds(10);
    private static final Map<String, String> SAME_DIR = Map.of(OpenOptions.BACKING_POLICY, "same-dir");
    private static final Map<String, String> NONE = Map.of(OpenOptions.BACKING_POLICY, "none");

    private QemuTool qemu;

    @BeforeEach
    void setUp() throws IOException {
        Capability.requireQemu();
        qemu = new QemuTool();
        Files.createDirectories(qemu.path("images"));
        Files.createDirectories(qemu.path("elsewhere"));
        qemu.create("images/base.qcow2", null, "1M");
        qemu.io("images/base.qcow2", "write -P 0x5a 0 64k");
        qemu.create("elsewhere/outside.qcow2", null, "1M");
    }

    @AfterEach
    void tearDown() throws IOException {
        if (qemu != null) {
            qemu.close();
        }
    }

    /** A qcow2 image in images/ naming backing without checking it (qemu-img -u). */
    private Path overlay(String name, String backing, String format) throws IOException {
        return qemu.create("images/" + name, null, "1M", "-u", "-b", backing, "-F", format);
    }

    private static ImageException refused(Path image, Map<String, String> options) {
        // A blocking open of a FIFO would hang here: the timeout turns that into a failure.
        return assertTimeoutPreemptively(NO_HANG,
                () -> assertThrows(ImageException.class, () -> QemuTool.open(image, options).close()));
    }

    private static void assertRefused(Path image, Map<String, String> options, String... parts) {
        String message = refused(image, options).getMessage();
        assertFalse(message.contains("\n"), "one-line message: " + message);
        assertTrue(message.contains(image.toString()), "names the image: " + message);
        for (String part : parts) {
            assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
        }
    }

    private static void assertOpensWithBackingData(Path image, Map<String, String> options) throws IOException {
        try (BlockBackend backend = QemuTool.open(image, options)) {
            Qcow2ContentTest.assertPattern(backend, 0, 4096, 0x5a);
        }
    }

    @Test
    void fifoIsRefusedWithoutBlocking() throws IOException {
        qemu.run("mkfifo", "images/pipe");
        Path top = overlay("top.qcow2", "pipe", "raw");
        assertRefused(top, Map.of(), "backing file 'pipe'", "is a FIFO");
        // Without a recorded format the probe would be the first read: it must not get that far either.
        Path probed = overlay("probed.qcow2", "pipe", "raw");
        Qcow2ContentTest.dropBackingFormatExtension(probed);
        assertRefused(probed, Map.of(), "is a FIFO");
    }

    @Test
    void characterDeviceIsRefused() throws IOException {
        assertRefused(overlay("top.qcow2", "/dev/zero", "raw"), Map.of(), "'/dev/zero'", "character device");
    }

    @Test
    void procFileIsRefused() throws IOException {
        assertRefused(overlay("top.qcow2", "/proc/self/environ", "raw"), Map.of(), "'/proc/self/environ'",
                "kernel pseudo file system");
    }

    @Test
    void directoryIsRefused() throws IOException {
        Files.createDirectories(qemu.path("images/folder"));
        assertRefused(overlay("top.qcow2", "folder", "raw"), Map.of(), "backing file 'folder'", "is a directory");
    }

    @Test
    void socketIsRefused() throws IOException {
        Path socket = qemu.path("images/sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            assertRefused(overlay("top.qcow2", "sock", "raw"), Map.of(), "is a socket");
        }
    }

    @Test
    void externalDataFileIsCheckedToo() throws IOException {
        Path data = qemu.path("images/d.data");
        Path img = qemu.create("images/d.qcow2", "data_file=" + data, "1M");
        Files.delete(data);
        qemu.run("mkfifo", data.toString());
        assertRefused(img, Map.of(), "data file '" + data + "'", "is a FIFO");
    }

    @Test
    void followKeepsRelativeAbsoluteAndSymlinkedNames() throws IOException {
        assertOpensWithBackingData(overlay("relative.qcow2", "base.qcow2", "qcow2"), Map.of());
        assertOpensWithBackingData(overlay("absolute.qcow2", qemu.path("images/base.qcow2").toString(), "qcow2"),
                Map.of());
        Files.createSymbolicLink(qemu.path("images/link.qcow2"), qemu.path("images/base.qcow2"));
        assertOpensWithBackingData(overlay("linked.qcow2", "link.qcow2", "qcow2"), Map.of());
        assertOpensWithBackingData(overlay("up.qcow2", "../images/base.qcow2", "qcow2"),
                Map.of(OpenOptions.BACKING_POLICY, "follow"));
        Path outside = overlay("outside.qcow2", "../elsewhere/outside.qcow2", "qcow2");
        QemuTool.open(outside, Map.of()).close();
    }

    @Test
    void sameDirAllowsOnlyTheImagesOwnFolder() throws IOException {
        assertOpensWithBackingData(overlay("relative.qcow2", "base.qcow2", "qcow2"), SAME_DIR);
        assertOpensWithBackingData(overlay("absolute.qcow2", qemu.path("images/base.qcow2").toString(), "qcow2"),
                SAME_DIR);
        // A link in the folder to a file in the folder is fine: what counts is where the file really is.
        Files.createSymbolicLink(qemu.path("images/inside-link.qcow2"), Path.of("base.qcow2"));
        assertOpensWithBackingData(overlay("linked.qcow2", "inside-link.qcow2", "qcow2"), SAME_DIR);

        Files.createSymbolicLink(qemu.path("images/escape.qcow2"), qemu.path("elsewhere/outside.qcow2"));
        Path escaping = overlay("escaping.qcow2", "escape.qcow2", "qcow2");
        assertRefused(escaping, SAME_DIR, "backing file 'escape.qcow2'", "outside the image's folder",
                "backing-policy=same-dir");
        QemuTool.open(escaping, Map.of()).close(); // follow still takes it

        assertRefused(overlay("dotdot.qcow2", "../elsewhere/outside.qcow2", "qcow2"), SAME_DIR,
                "outside the image's folder");
    }

    @Test
    void sameDirAppliesToDataFiles() throws IOException {
        // qemu-img resolves a relative data_file against its working folder, so give it absolute names.
        Path inside = qemu.create("images/in.qcow2", "data_file=" + qemu.path("images/in.data"), "1M");
        QemuTool.open(inside, SAME_DIR).close();
        Path data = qemu.path("elsewhere/d.data");
        Path img = qemu.create("images/d.qcow2", "data_file=" + data, "1M");
        assertRefused(img, SAME_DIR, "data file '" + data + "'", "outside the image's folder");
        QemuTool.open(img, Map.of()).close();
    }

    @Test
    void sameDirAppliesToEveryLayer() throws IOException {
        qemu.create("elsewhere/deep.qcow2", null, "1M");
        Path mid = qemu.create("images/mid.qcow2", null, "1M", "-u", "-b", "../elsewhere/deep.qcow2", "-F", "qcow2");
        String message = refused(overlay("top.qcow2", "mid.qcow2", "qcow2"), SAME_DIR).getMessage();
        assertTrue(message.contains(mid.toString()) && message.contains("'../elsewhere/deep.qcow2'")
                && message.contains("outside the image's folder"), message);
    }

    @Test
    void noneRefusesImagesThatNameAFile() throws IOException {
        assertRefused(overlay("top.qcow2", "base.qcow2", "qcow2"), NONE, "names backing file 'base.qcow2'",
                "backing-policy=none");
        Path data = qemu.path("images/d.data");
        assertRefused(qemu.create("images/d.qcow2", "data_file=" + data, "1M"), NONE, "names data file '" + data + "'");
        try (BlockBackend alone = QemuTool.open(qemu.path("images/base.qcow2"), NONE)) {
            Qcow2ContentTest.assertPattern(alone, 0, 4096, 0x5a);
        }
    }

    @Test
    void badPolicyValueIsOneLineError() throws IOException {
        ImageException e = assertThrows(ImageException.class,
                () -> QemuTool.open(qemu.path("images/base.qcow2"), Map.of(OpenOptions.BACKING_POLICY, "sometimes")));
        assertEquals("option backing-policy must be one of follow, same-dir, none: sometimes", e.getMessage());
    }
}
