package org.blockfuse.api;

import java.util.List;

/**
 * A component that reads export configuration keys (a backend factory, a transport). It declares
 * every key it reads; the export refuses keys that no installed owner declares, checks each value
 * against its {@link OptionSpec}, and describes them all through Metatype.
 */
public interface OptionOwner {

    /** The keys this component reads. */
    default List<OptionSpec> options() {
        return List.of();
    }
}
