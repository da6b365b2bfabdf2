package org.blockfuse.nbd.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.List;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

import org.blockfuse.api.ImageException;

/**
 * TLS for nbds:// exports: whom to trust (a trust store holding the CA, else the JDK's), an
 * optional client certificate (a key store) and the name the server's certificate must carry (the
 * URI's host; for a Unix socket {@code tls-hostname}, without which only the CA is checked).
 * Passwords are read from the keys and never logged.
 */
final class NbdTls {
    private final SSLContext context;
    private final int peerPort;
    /** The name the certificate must carry, or null (a Unix socket without tls-hostname: the CA only). */
    private final String verifyName;

    private NbdTls(SSLContext context, int peerPort, String verifyName) {
        this.context = context;
        this.peerPort = peerPort;
        this.verifyName = verifyName;
    }

    /** The TLS settings of {@code uri}, or null when it is not nbds. */
    static NbdTls of(NbdUri uri, NbdOptions o) throws ImageException {
        if (!uri.tls()) {
            return null;
        }
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(o.truststore().isEmpty() ? null : load(o.truststore(), o.truststorePassword(), "tls-truststore"));
            KeyManagerFactory kmf = null;
            if (!o.keystore().isEmpty()) {
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(load(o.keystore(), o.keystorePassword(), "tls-keystore"), o.keystorePassword().toCharArray());
            }
            SSLContext c = SSLContext.getInstance("TLS");
            c.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            String name = !o.tlsHostname().isEmpty() ? o.tlsHostname() : uri.socket() == null ? uri.host() : null;
            return new NbdTls(c, uri.port(), name);
        } catch (GeneralSecurityException e) {
            throw new ImageException("TLS settings cannot be used: " + e.getMessage(), e);
        }
    }

    private static KeyStore load(String file, String password, String key) throws ImageException {
        Path p = Path.of(file);
        if (key.equals("tls-truststore") && isPem(p)) {
            return pemCertificates(p);
        }
        try (InputStream in = Files.newInputStream(p)) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType()); // PKCS12; JKS too since JDK 9
            ks.load(in, password.isEmpty() ? null : password.toCharArray());
            return ks;
        } catch (IOException | GeneralSecurityException e) {
            throw new ImageException(key + " " + file + " cannot be read: " + e.getMessage(), e);
        }
    }

    private static boolean isPem(Path p) {
        try (InputStream in = Files.newInputStream(p)) {
            return new String(in.readNBytes(10), java.nio.charset.StandardCharsets.US_ASCII).startsWith("-----BEGIN");
        } catch (IOException e) {
            return false; // reported when the file is read as a key store
        }
    }

    /** A PEM file of CA certificates (as qemu's ca-cert.pem) as a trust store: no password needed. */
    private static KeyStore pemCertificates(Path p) throws ImageException {
        try (InputStream in = Files.newInputStream(p)) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            for (java.security.cert.Certificate c : java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificates(in)) {
                ks.setCertificateEntry("ca-" + i++, c);
            }
            if (i == 0) {
                throw new ImageException("tls-truststore " + p + " holds no certificate");
            }
            return ks;
        } catch (IOException | GeneralSecurityException e) {
            throw new ImageException("tls-truststore " + p + " cannot be read: " + e.getMessage(), e);
        }
    }

    /** A client engine for one connection, checking the server's name when one is known. */
    SSLEngine engine() {
        // the engine checks the certificate against the host it is created for
        SSLEngine e = verifyName == null ? context.createSSLEngine() : context.createSSLEngine(verifyName, peerPort);
        SSLParameters p = e.getSSLParameters();
        if (verifyName != null) {
            p.setEndpointIdentificationAlgorithm("HTTPS"); // the certificate must name the server
            if (!verifyName.isEmpty() && !Character.isDigit(verifyName.charAt(0)) && !verifyName.contains(":")) {
                p.setServerNames(List.of(new SNIHostName(verifyName)));
            }
        }
        e.setSSLParameters(p);
        return e;
    }
}
