package org.blockfuse.qcow2;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.opentest4j.TestAbortedException;

/** Strict by default: a missing capability fails; only the explicit opt-out turns it into a skip. */
class CapabilityTest {

    @Test
    void missingCapabilityFailsUnlessLenient() {
        String old = System.getProperty(Capability.LENIENT);
        try {
            System.clearProperty(Capability.LENIENT);
            AssertionError e = assertThrows(AssertionError.class, () -> Capability.require(false, "a frobnicator"));
            assertTrue(e.getMessage().contains("a frobnicator") && e.getMessage().contains(Capability.LENIENT),
                    e.getMessage());
            System.setProperty(Capability.LENIENT, "false");
            assertThrows(AssertionError.class, () -> Capability.requireTools("no-such-tool-here"));
            System.setProperty(Capability.LENIENT, "true");
            assertThrows(TestAbortedException.class, () -> Capability.require(false, "a frobnicator"));
            Capability.require(true, "present");
        } finally {
            if (old == null) {
                System.clearProperty(Capability.LENIENT);
            } else {
                System.setProperty(Capability.LENIENT, old);
            }
        }
    }
}
