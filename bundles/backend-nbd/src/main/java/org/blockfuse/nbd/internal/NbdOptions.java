package org.blockfuse.nbd.internal;

import java.util.List;
import java.util.Map;

import org.blockfuse.api.ImageException;
import org.blockfuse.api.OptionSpec;

/**
 * The nbd backend's keys, read once when the export opens.
 * @param connections       connections per export when the server allows several (NBD_FLAG_CAN_MULTI_CONN)
 * @param connectMillis     bound on connecting and the handshake
 * @param requestMillis     a request with no reply for this long drops its connection (and is retried)
 * @param reconnectMillis   how long requests wait for the server to come back before they fail with EIO
 */
public record NbdOptions(int connections, long connectMillis, long requestMillis, long reconnectMillis,
        String truststore, String truststorePassword, String keystore, String keystorePassword, String tlsHostname) {
    public static final int DEFAULT_CONNECTIONS = 4;

    public static final List<OptionSpec> SPECS = List.of(
            OptionSpec.integer("connections", DEFAULT_CONNECTIONS, 1, 16, "nbd: connections to the server when it "
                    + "allows several (multi-conn); 1 when it does not."),
            OptionSpec.integer("connect-timeout", 10, 1, 3600, "nbd: seconds to connect and finish the handshake."),
            OptionSpec.integer("request-timeout", 60, 1, 86400, "nbd: seconds a request may wait for its reply; "
                    + "then its connection is dropped and the request retried on the next one."),
            OptionSpec.integer("reconnect-timeout", 30, 0, 86400, "nbd: seconds requests wait for a lost server "
                    + "to come back (the same export: same size and flags) before they fail with EIO."),
            OptionSpec.string("tls-truststore", "", "nbds: the CA certificates to trust: a PEM file (as qemu's "
                    + "ca-cert.pem) or a key store (PKCS12 or JKS); empty = the JDK's."),
            OptionSpec.string("tls-truststore-password", "", "nbds: password of tls-truststore (never logged)."),
            OptionSpec.string("tls-keystore", "", "nbds: key store (PKCS12 or JKS) with a client certificate and key, "
                    + "for servers that ask for one."),
            OptionSpec.string("tls-keystore-password", "", "nbds: password of tls-keystore and its key (never logged)."),
            OptionSpec.string("tls-hostname", "", "nbds: the name the server's certificate must carry; default the "
                    + "URI's host (for a Unix socket: unset = only the CA is checked)."));

    public static NbdOptions parse(Map<String, String> o) throws ImageException {
        for (OptionSpec s : SPECS) {
            String v = o.get(s.key());
            if (v != null && s.problem(v) != null) {
                throw new ImageException(s.problem(v));
            }
        }
        return new NbdOptions((int) value(o, "connections"), value(o, "connect-timeout") * 1000,
                value(o, "request-timeout") * 1000, value(o, "reconnect-timeout") * 1000,
                o.getOrDefault("tls-truststore", "").trim(), o.getOrDefault("tls-truststore-password", ""),
                o.getOrDefault("tls-keystore", "").trim(), o.getOrDefault("tls-keystore-password", ""),
                o.getOrDefault("tls-hostname", "").trim());
    }

    private static long value(Map<String, String> o, String key) {
        String v = o.get(key);
        if (v == null) {
            v = SPECS.stream().filter(s -> s.key().equals(key)).findFirst().orElseThrow().defaultValue();
        }
        return Long.parseLong(v.trim());
    }
}
