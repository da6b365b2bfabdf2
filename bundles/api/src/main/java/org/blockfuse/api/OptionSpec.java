package org.blockfuse.api;

import java.util.List;
import java.util.Locale;

/**
 * One configuration key a backend factory, a transport or the export itself reads: its name,
 * type, default and description, and the check of a value. Declared by whoever uses the key, so
 * the export can refuse keys nobody owns and Metatype ({@code config:meta}) can describe them all.
 *
 * @param key         the key, as written in etc/org.blockfuse.export-NAME.cfg
 * @param type        what a value must be
 * @param defaultValue shown by config:meta; "" when the default is computed (e.g. one per CPU)
 * @param description one or two sentences for the operator
 * @param min         smallest value of an {@link Type#INTEGER}
 * @param max         largest value of an {@link Type#INTEGER}
 * @param choices     the allowed values of a {@link Type#CHOICE}
 */
public record OptionSpec(String key, Type type, String defaultValue, String description, long min, long max,
        List<String> choices) {

    public enum Type { STRING, INTEGER, BOOLEAN, SIZE, CHOICE }

    public OptionSpec {
        choices = List.copyOf(choices);
    }

    public static OptionSpec string(String key, String defaultValue, String description) {
        return new OptionSpec(key, Type.STRING, defaultValue, description, 0, 0, List.of());
    }

    public static OptionSpec integer(String key, long defaultValue, long min, long max, String description) {
        return new OptionSpec(key, Type.INTEGER, Long.toString(defaultValue), description, min, max, List.of());
    }

    public static OptionSpec bool(String key, boolean defaultValue, String description) {
        return new OptionSpec(key, Type.BOOLEAN, Boolean.toString(defaultValue), description, 0, 0, List.of());
    }

    /** A size in the one size syntax ({@link Sizes}); "" default = none. */
    public static OptionSpec size(String key, String defaultValue, String description) {
        return new OptionSpec(key, Type.SIZE, defaultValue, description, 0, 0, List.of());
    }

    public static OptionSpec choice(String key, String defaultValue, String description, String... choices) {
        return new OptionSpec(key, Type.CHOICE, defaultValue, description, 0, 0, List.of(choices));
    }

    /** Why {@code value} is not acceptable for this key (a sentence naming the key), or null. */
    public String problem(String value) {
        String v = value.trim();
        switch (type) {
            case INTEGER:
                try {
                    long n = Long.parseLong(v);
                    if (n >= min && n <= max) {
                        return null;
                    }
                } catch (NumberFormatException e) {
                    // reported below
                }
                return key + " must be a whole number from " + min + " to " + max + ", not '" + value + "'";
            case BOOLEAN:
                String b = v.toLowerCase(Locale.ROOT);
                return b.equals("true") || b.equals("false") ? null : key + " must be true or false, not '" + value + "'";
            case SIZE:
                try {
                    Sizes.parse(v);
                    return null;
                } catch (ImageException e) {
                    return key + ": " + e.getMessage();
                }
            case CHOICE:
                return choices.contains(v) ? null : key + " must be " + String.join(" or ", choices) + ", not '" + value + "'";
            default:
                return null;
        }
    }
}
