package org.blockfuse.nativeio;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LibcTest {
    @TempDir
    Path dir;

    @Test
    void positionalIoThroughDirectMemory() throws Exception {
        Path f = dir.resolve("f");
        int fd = Libc.open(f.toString(), Libc.O_RDWR | Libc.O_CREAT, 0600);
        try {
            ByteBuffer b = ByteBuffer.allocateDirect(5);
            b.put("hello".getBytes(StandardCharsets.US_ASCII)).flip();
            assertEquals(5, Libc.pwrite(fd, Libc.address(b), 5, 4096));
            ByteBuffer r = ByteBuffer.allocateDirect(5);
            assertEquals(5, Libc.pread(fd, Libc.address(r), 5, 4096));
            assertEquals('h', r.get(0));
            assertEquals(4096 + 5, Libc.fstat(fd).size());
            assertEquals(4096, Libc.lseek(fd, 0, Libc.SEEK_DATA));
        } finally {
            Libc.close(fd);
        }
        assertEquals(4101, Files.size(f));
    }

    @Test
    void errorsCarryErrnoAndCall() {
        NativeException e = assertThrows(NativeException.class, () -> Libc.open("/nonexistent/x", Libc.O_RDONLY, 0));
        assertEquals(Errno.ENOENT, e.errno());
        assertTrue(e.getMessage().contains("open /nonexistent/x"), e.getMessage());
    }

    @Test
    void sixArgumentMmapWorks() throws Exception {
        // MAP_ANONYMOUS|MAP_PRIVATE = 0x22; the 6th argument (offset) must reach the kernel intact.
        long addr = Libc.mmap(8192, Libc.PROT_READ | Libc.PROT_WRITE, 0x22, -1, 0);
        ByteBuffer m = Libc.wrap(addr, 8192);
        m.putInt(4096, 42);
        assertEquals(42, m.getInt(4096));
        Libc.munmap(addr, 8192);
    }
}
