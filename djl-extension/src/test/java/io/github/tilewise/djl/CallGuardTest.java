package io.github.tilewise.djl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@link CallGuard}: close waits for calls in flight, runs its release once, refuses later calls.
 */
class CallGuardTest {

    @Test
    void closeWaitsForTheCallInFlightThenRefusesNewCalls() throws Exception {
        CallGuard guard = new CallGuard("thing");
        AtomicInteger released = new AtomicInteger();
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch finish = new CountDownLatch(1);
        AtomicInteger releasedWhileInside = new AtomicInteger(-1);
        Thread call =
                new Thread(
                        () -> {
                            try (CallGuard.Lease lease = guard.enter()) {
                                inside.countDown();
                                finish.await();
                                releasedWhileInside.set(released.get());
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        });
        call.start();
        assertTrue(inside.await(10, TimeUnit.SECONDS));
        Thread closer = new Thread(() -> guard.close(released::incrementAndGet));
        closer.start();
        closer.join(200);
        assertTrue(closer.isAlive(), "close must wait for the call in flight");
        finish.countDown();
        call.join(10_000);
        closer.join(10_000);
        assertEquals(0, releasedWhileInside.get(), "released under a running call");
        assertEquals(1, released.get());
        IllegalStateException e = assertThrows(IllegalStateException.class, guard::enter);
        assertTrue(e.getMessage().contains("thing is closed"), e.getMessage());
        assertFalse(guard.close(released::incrementAndGet), "a second close does nothing");
        assertEquals(1, released.get());
    }

    @Test
    void closingFromInsideACallIsRefusedNotADeadlock() {
        CallGuard guard = new CallGuard("thing");
        try (CallGuard.Lease lease = guard.enter()) {
            assertThrows(IllegalStateException.class, () -> guard.close(() -> {}));
            try (CallGuard.Lease nested = guard.enter()) {
                assertFalse(guard.isClosed());
            }
        }
        assertTrue(guard.close(() -> {}));
        assertTrue(guard.isClosed());
    }
}
