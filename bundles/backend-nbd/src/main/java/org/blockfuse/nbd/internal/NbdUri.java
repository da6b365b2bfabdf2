package org.blockfuse.nbd.internal;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.blockfuse.api.ImageException;

/**
 * Where an NBD export is, in the URI syntax qemu and nbdkit use:
 * {@code nbd://HOST[:PORT]/NAME} (TCP, port 10809 by default) and
 * {@code nbd+unix:///NAME?socket=PATH} (a Unix socket), and with TLS {@code nbds://} and
 * {@code nbds+unix://}. An empty NAME is the server's default export.
 *
 * @param socket the Unix socket, or null for TCP
 */
public record NbdUri(String text, String host, int port, Path socket, String exportName, boolean tls) {
    public static final int DEFAULT_PORT = 10809;
    /** The protocol's limit on an export name (NBD_OPT_GO rejects longer ones). */
    private static final int MAX_NAME_BYTES = 4096;

    /** Parses {@code text}, refusing anything that is not one of the two forms with a one-line reason. */
    public static NbdUri parse(String text) throws ImageException {
        URI u;
        try {
            u = new URI(text.trim());
        } catch (URISyntaxException e) {
            throw new ImageException("nbd image '" + text + "' is not a URI: " + e.getReason());
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme();
        if (u.getRawUserInfo() != null) {
            throw new ImageException("nbd image URI must not carry a user name or password");
        }
        String name = exportName(u);
        switch (scheme) {
            case "nbd":
            case "nbds": {
                if (u.getHost() == null || u.getHost().isEmpty()) {
                    throw new ImageException("nbd image '" + text + "' names no host (nbd://HOST[:PORT]/NAME)");
                }
                if (u.getRawQuery() != null) {
                    throw new ImageException("nbd image '" + text + "': " + scheme + ":// takes no query (socket= is for "
                            + scheme + "+unix://)");
                }
                int port = u.getPort() < 0 ? DEFAULT_PORT : u.getPort();
                if (port == 0 || port > 65535) {
                    throw new ImageException("nbd image '" + text + "': port " + port + " is out of range");
                }
                return new NbdUri(u.toString(), u.getHost(), port, null, name, scheme.equals("nbds"));
            }
            case "nbd+unix":
            case "nbds+unix": {
                if (u.getRawAuthority() != null) {
                    throw new ImageException("nbd image '" + text + "': nbd+unix:// takes no host (nbd+unix:///NAME?socket=PATH)");
                }
                String socket = socketParameter(u, text);
                Path p = Path.of(socket);
                if (!p.isAbsolute()) {
                    throw new ImageException("nbd image '" + text + "': socket path " + socket + " must be absolute");
                }
                return new NbdUri(u.toString(), null, 0, p, name, scheme.equals("nbds+unix"));
            }
            default:
                throw new ImageException("nbd image '" + text + "' must start with nbd://, nbds://, nbd+unix:// or nbds+unix://");
        }
    }

    private static String exportName(URI u) throws ImageException {
        String path = u.getPath() == null ? "" : u.getPath();
        String name = path.startsWith("/") ? path.substring(1) : path;
        if (name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new ImageException("nbd export name is longer than " + MAX_NAME_BYTES + " bytes");
        }
        return name;
    }

    private static String socketParameter(URI u, String text) throws ImageException {
        String query = u.getRawQuery();
        String socket = null;
        for (String pair : query == null ? new String[0] : query.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            if (!key.equals("socket")) {
                throw new ImageException("nbd image '" + text + "': unknown URI parameter '" + key + "' (only socket=PATH)");
            }
            socket = URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
        }
        if (socket == null || socket.isEmpty()) {
            throw new ImageException("nbd image '" + text + "' names no socket (nbd+unix:///NAME?socket=PATH)");
        }
        return socket;
    }

    SocketAddress address() {
        return socket != null ? UnixDomainSocketAddress.of(socket) : new InetSocketAddress(host, port);
    }

    /** The server, for logs and export-list: host:port or the socket path, with the export name. */
    public String server() {
        return (socket != null ? "unix:" + socket : host + ":" + port) + " export '" + exportName + "'";
    }

    @Override
    public String toString() {
        return text;
    }
}
