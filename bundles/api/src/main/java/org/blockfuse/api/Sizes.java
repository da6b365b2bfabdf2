package org.blockfuse.api;

import java.util.Locale;

/**
 * The one size syntax of every size option: 4096, 512K, 64M, 1G, 1GiB, 2T (binary units, any case,
 * locale-independent).
 */
public final class Sizes {
    private Sizes() {
    }

    public static long parse(String text) throws ImageException {
        String s = text.trim().toUpperCase(Locale.ROOT); // not the default locale: "gib" is no size in Turkish
        long unit = 1;
        if (s.endsWith("IB")) {
            s = s.substring(0, s.length() - 2);
        } else if (s.endsWith("B")) {
            s = s.substring(0, s.length() - 1);
        }
        if (!s.isEmpty()) {
            int shift = "KMGTP".indexOf(s.charAt(s.length() - 1));
            if (shift >= 0) {
                unit = 1L << (10 * (shift + 1));
                s = s.substring(0, s.length() - 1);
            }
        }
        try {
            long n = Long.parseLong(s);
            if (n <= 0 || n > Long.MAX_VALUE / unit) {
                throw new NumberFormatException();
            }
            return n * unit;
        } catch (NumberFormatException e) {
            throw new ImageException("'" + text + "' is not a size (examples: 65536, 64M, 1G)");
        }
    }
}
