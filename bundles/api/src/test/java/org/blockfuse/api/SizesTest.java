package org.blockfuse.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Locale;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class SizesTest {
    @ParameterizedTest
    @CsvSource({
            "4096, 4096",
            "1, 1",
            "512K, 524288",
            "512k, 524288",
            "512KB, 524288",
            "512KiB, 524288",
            "4M, 4194304",
            "64m, 67108864",
            "1G, 1073741824",
            "1GiB, 1073741824",
            "1gib, 1073741824",
            "2T, 2199023255552",
            "1P, 1125899906842624",
            "'  8M ', 8388608",
            "9223372036854775807, 9223372036854775807",
            "8191P, 9222246136947933184",
    })
    void parses(String text, long bytes) throws ImageException {
        assertEquals(bytes, Sizes.parse(text));
    }

    @ParameterizedTest
    @ValueSource(strings = { "", " ", "0", "0M", "-1", "-4M", "abc", "1.5G", "1,5G", "1 G", "M", "KiB", "1X", "1E",
            "0x10", "8192P", "9223372036854775808", "99999999999999999999", "1GG" })
    void refusesInOneLine(String text) {
        ImageException e = assertThrows(ImageException.class, () -> Sizes.parse(text));
        assertEquals("'" + text + "' is not a size (examples: 65536, 64M, 1G)", e.getMessage());
    }

    @Test
    void unitsDoNotDependOnTheLocale() throws ImageException {
        Locale saved = Locale.getDefault();
        try {
            Locale.setDefault(Locale.forLanguageTag("tr-TR")); // "i".toUpperCase() is a dotted capital I there
            assertEquals(1L << 30, Sizes.parse("1gib"));
            assertEquals(4L << 20, Sizes.parse("4mib"));
        } finally {
            Locale.setDefault(saved);
        }
    }
}
