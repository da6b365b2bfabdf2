package org.blockfuse.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.blockfuse.api.BlockBackend;
import org.blockfuse.api.ImageException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * nbds:// against Debian's qemu-nbd with {@code --tls-creds} (x509 made here with openssl): bytes
 * through TLS both ways; a server whose CA is not trusted, a certificate for another name, and a
 * plain nbd:// client of a TLS-only server are each refused with one line.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TlsTest {
    private static final int MIB = 1 << 20;
    @TempDir
    Path dir;
    private Path creds;
    private Path truststore;

    private void run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).directory(creds.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", command) + " hung");
        assertEquals(0, p.exitValue(), String.join(" ", command) + ": " + out);
    }

    /** A CA, a server certificate for localhost and 127.0.0.1, and a PKCS12 trust store with the CA. */
    @BeforeEach
    void certificates() throws Exception {
        creds = Files.createDirectory(dir.resolve("creds"));
        run(NbdServer.tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
                "ca-cert.pem", "-days", "2", "-subj", "/CN=blockfuse test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr",
                "-subj", "/CN=localhost");
        Files.writeString(creds.resolve("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", "server-cert.pem", "-days", "2", "-extfile", "ext.cnf");
        truststore = dir.resolve("trust.p12");
        run(NbdServer.tool("keytool"), "-importcert", "-noprompt", "-alias", "ca", "-file", "ca-cert.pem", "-keystore",
                truststore.toString(), "-storetype", "PKCS12", "-storepass", "s3cret");
    }

    private NbdServer tlsServer(Path image) throws IOException {
        return tlsServer(image, false);
    }

    /** qemu-nbd with TLS; {@code clientCertificates}: it asks every client for a certificate signed by the CA. */
    private NbdServer tlsServer(Path image, boolean clientCertificates) throws IOException {
        return NbdServer.qemuNbdTcp(dir, "--object", "tls-creds-x509,id=tls0,dir=" + creds + ",endpoint=server,verify-peer="
                + (clientCertificates ? "on" : "off"), "--tls-creds=tls0", "--shared=8", "--format=raw", image.toString());
    }

    @Test
    void aClientCertificateWhenTheServerAsksAndReconnectingThroughTls() throws Exception {
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client-key.pem", "-out", "client.csr",
                "-subj", "/CN=blockfuse client");
        Files.writeString(creds.resolve("client.cnf"), "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n");
        run("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", "client-cert.pem", "-days", "2", "-extfile", "client.cnf");
        Path keystore = dir.resolve("client.p12");
        run("openssl", "pkcs12", "-export", "-in", "client-cert.pem", "-inkey", "client-key.pem", "-out",
                keystore.toString(), "-passout", "pass:k3y", "-name", "client");
        byte[] data = new byte[MIB];
        new Random(3).nextBytes(data);
        Path image = Files.write(dir.resolve("cert.raw"), data);
        try (NbdServer s = tlsServer(image, true)) {
            String uri = "nbds://localhost:" + s.port() + "/";
            String pem = creds.resolve("ca-cert.pem").toString(); // the CA as qemu has it: PEM, no password
            assertThrows(ImageException.class, () -> open(uri, false, "tls-truststore", pem, "connect-timeout", "5"),
                    "no client certificate: refused");
            try (BlockBackend b = open(uri, false, "tls-truststore", pem, "tls-keystore", keystore.toString(),
                    "tls-keystore-password", "k3y")) {
                ByteBuffer got = ByteBuffer.allocate(MIB);
                b.read(0, got);
                assertArrayEquals(data, got.array());
                s.kill();
                s.start(); // the reconnection goes through the TLS handshake again
                got.clear();
                b.read(0, got);
                assertArrayEquals(data, got.array(), "after the server came back");
                assertTrue(b.describeConnection().contains("reconnects"), b.describeConnection());
            }
        }
    }

    private static BlockBackend open(String uri, boolean writable, String... options) throws IOException {
        return NbdServer.open(uri, writable, options);
    }

    @Test
    void bytesGoThroughTlsBothWays() throws Exception {
        byte[] data = new byte[4 * MIB];
        new Random(1).nextBytes(data);
        Path image = Files.write(dir.resolve("tls.raw"), data);
        try (NbdServer s = tlsServer(image);
                BlockBackend b = open("nbds://localhost:" + s.port() + "/", true, "tls-truststore", truststore.toString(),
                        "tls-truststore-password", "s3cret")) {
            ByteBuffer all = ByteBuffer.allocateDirect(4 * MIB);
            b.read(0, all);
            byte[] got = new byte[4 * MIB];
            all.get(0, got);
            assertArrayEquals(data, got, "every byte through TLS");
            byte[] w = new byte[MIB + 3];
            new Random(2).nextBytes(w);
            b.write(12345, ByteBuffer.wrap(w));
            b.flush();
            assertArrayEquals(w, Arrays.copyOfRange(Files.readAllBytes(image), 12345, 12345 + w.length), "written through TLS");
            assertTrue(b.describeConnection().contains("connections up"), b.describeConnection());
        }
    }

    @Test
    void untrustedWrongNameAndPlainClientsAreRefusedInOneLine() throws Exception {
        Path image = Files.write(dir.resolve("r.raw"), new byte[MIB]);
        try (NbdServer s = tlsServer(image)) {
            ImageException untrusted = assertThrows(ImageException.class, () -> open("nbds://localhost:" + s.port() + "/", false));
            assertTrue(untrusted.getMessage().contains("TLS with the server failed"), untrusted.getMessage());
            ImageException wrongName = assertThrows(ImageException.class, () -> open("nbds://localhost:" + s.port() + "/",
                    false, "tls-truststore", truststore.toString(), "tls-truststore-password", "s3cret",
                    "tls-hostname", "disk.example.org"));
            assertTrue(wrongName.getMessage().contains("TLS with the server failed"), wrongName.getMessage());
            ImageException plain = assertThrows(ImageException.class, () -> open("nbd://127.0.0.1:" + s.port() + "/", false));
            assertTrue(plain.getMessage().contains("requires TLS") && plain.getMessage().endsWith("use nbds://"),
                    plain.getMessage());
            for (ImageException e : new ImageException[] {untrusted, wrongName, plain}) {
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                assertFalse(e.getMessage().contains("s3cret"), "no password in a message");
            }
        }
    }
}
