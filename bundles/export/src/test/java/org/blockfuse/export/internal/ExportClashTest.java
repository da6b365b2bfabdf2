package org.blockfuse.export.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.blockfuse.api.ExportException;
import org.blockfuse.api.ExportSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Clashes between exports are found through {@code ..}, {@code //} and symlinked folders; links as mountpoints are refused. */
class ExportClashTest {
    @TempDir
    Path dir;

    private static ExportSpec spec(String name, Path image, Path mountpoint) {
        return new ExportSpec(name, image, "raw", mountpoint, false, false, "auto", "auto", Map.of());
    }

    @Test
    void theSameMountpointSpelledDifferentlyIsStillTheSame() throws Exception {
        Path real = Files.createDirectory(dir.resolve("real"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), real);
        Files.createDirectory(dir.resolve("other"));
        Path image = Files.createFile(dir.resolve("a.raw"));
        ExportSpec first = spec("a", image, real.resolve("x.img"));
        for (Path alias : List.of(link.resolve("x.img"), Path.of(dir + "/other/../real/x.img"), Path.of(dir + "//real//x.img"))) {
            ExportException e = assertThrows(ExportException.class,
                    () -> ExportValidator.checkClashes(spec("b", image, alias), List.of(first)), alias.toString());
            assertTrue(e.getMessage().contains("is already used by export a"), e.getMessage());
        }
        ExportValidator.checkClashes(spec("b", image, real.resolve("y.img")), List.of(first));
    }

    @Test
    void anImageThatIsAnotherExportsMountpointIsRefused() throws Exception {
        Path real = Files.createDirectory(dir.resolve("real"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), real);
        Path image = Files.createFile(real.resolve("a.raw"));
        Path mounted = Files.createFile(real.resolve("a.img"));
        ExportSpec first = spec("a", image, mounted);
        ExportException e = assertThrows(ExportException.class,
                () -> ExportValidator.checkClashes(spec("b", link.resolve("a.img"), real.resolve("b.img")), List.of(first)));
        assertTrue(e.getMessage().contains("is the mountpoint of export a"), e.getMessage());
        ExportException over = assertThrows(ExportException.class,
                () -> ExportValidator.checkClashes(spec("b", Files.createFile(real.resolve("c.raw")), link.resolve("a.raw")),
                        List.of(first)));
        assertTrue(over.getMessage().contains("is the image of export a"), over.getMessage());
        ExportValidator.checkClashes(spec("self", image, image), List.of()); // an image may be its own mountpoint
    }

    @Test
    void aMountpointThatIsASymlinkIsRefused() throws Exception {
        Path victim = Files.createFile(dir.resolve("victim"));
        Path link = Files.createSymbolicLink(dir.resolve("link.img"), victim);
        ExportException e = assertThrows(ExportException.class,
                () -> ExportValidator.checkClashes(spec("a", victim, link), List.of()));
        assertTrue(e.getMessage().contains("is a symbolic link"), e.getMessage());
    }
}
