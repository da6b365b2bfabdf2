package org.blockfuse.export.internal;

import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

import org.blockfuse.api.FuseTransport;
import org.blockfuse.api.TransportInfo;

/**
 * The installed transports and the choice among them: an explicit name, or for {@code auto} the
 * best-ranked available one; and whether an arriving transport should take over a live export.
 */
final class TransportSelector {
    /** What the selection came to: a transport, or why none (waiting for one, or failed for good). */
    record Choice(FuseTransport transport, String waitReason, String failReason) {
        static Choice of(FuseTransport t) {
            return new Choice(t, null, null);
        }
    }

    private final Map<String, FuseTransport> transports = new ConcurrentHashMap<>();

    void add(FuseTransport t) {
        transports.put(t.name(), t);
    }

    /** @return false if {@code t} was not the one installed under its name */
    boolean remove(FuseTransport t) {
        return transports.remove(t.name(), t);
    }

    FuseTransport get(String name) {
        return transports.get(name);
    }

    Collection<String> names() {
        return transports.keySet();
    }

    /** Best first; {@code passedOver} hears about each unavailable one skipped. */
    Choice choose(String wanted, java.util.function.Consumer<FuseTransport> passedOver) {
        if (!wanted.equals("auto")) {
            FuseTransport t = transports.get(wanted);
            if (t == null) {
                return new Choice(null, "transport " + wanted + " is not installed", null);
            }
            if (!t.availability().available()) {
                return new Choice(null, null, "transport " + wanted + " is not available here: " + t.availability().reason());
            }
            return Choice.of(t);
        }
        for (FuseTransport t : ranked()) {
            if (t.availability().available()) {
                return Choice.of(t);
            }
            passedOver.accept(t);
        }
        return new Choice(null, "no FUSE transport is available", null);
    }

    /**
     * Hot swap: should an {@code auto} export now served by {@code current} move to {@code arriving}
     * on its live connection? Only upwards in rank, and only to a transport that can join one.
     */
    boolean shouldUpgrade(String current, FuseTransport arriving) {
        if (!arriving.joinsLiveConnections() || !arriving.availability().available() || current.equals(arriving.name())) {
            return false;
        }
        FuseTransport now = transports.get(current);
        return now == null || now.rank() < arriving.rank();
    }

    List<TransportInfo> describe() {
        return ranked().stream()
                .map(t -> new TransportInfo(t.name(), t.rank(), t.availability().available(), t.availability().reason()))
                .collect(Collectors.toList());
    }

    private List<FuseTransport> ranked() {
        return transports.values().stream().sorted(Comparator.comparingInt(FuseTransport::rank).reversed())
                .collect(Collectors.toList());
    }
}
