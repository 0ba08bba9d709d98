package com.mariospizzeria.bench;

import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;

/**
 * Debezium's embedded engine streaming the outbox table, each record routed by the outbox event
 * router and produced to the broker with a plain KafkaProducer: the peer the relay is measured
 * against (bench/peer.py).
 *
 * <p>Its whole configuration comes on standard input as properties, passwords included, so none
 * is on the command line or on disk: {@code producer.*} for the producer, the rest for the engine
 * (connector and SMT). It prints {@link #READY} once the connector polls the replication slot:
 * from then on every committed outbox row is streamed.
 */
public final class OutboxPeer {
    static final String READY = "outbox peer streaming";
    private static final String PRODUCER_PREFIX = "producer.";
    // The relay writes these on every record; the router has no column for them.
    private static final byte[] SPEC_VERSION = "1.0".getBytes(StandardCharsets.UTF_8);
    private static final byte[] JSON = "application/json".getBytes(StandardCharsets.UTF_8);

    private OutboxPeer() {}

    public static void main(String[] args) throws Exception {
        Properties given = new Properties();
        given.load(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Properties engineConfig = new Properties();
        Properties producerConfig = new Properties();
        for (String name : given.stringPropertyNames()) {
            if (name.startsWith(PRODUCER_PREFIX)) {
                producerConfig.setProperty(name.substring(PRODUCER_PREFIX.length()), given.getProperty(name));
            } else {
                engineConfig.setProperty(name, given.getProperty(name));
            }
        }
        KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(producerConfig, new ByteArraySerializer(), new ByteArraySerializer());
        CountDownLatch ended = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean(false);
        AtomicBoolean announced = new AtomicBoolean(false);
        DebeziumEngine<RecordChangeEvent<SourceRecord>> engine =
                DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
                        .using(engineConfig)
                        .using(new DebeziumEngine.ConnectorCallback() {
                            @Override
                            public void pollingStarted() {
                                if (announced.compareAndSet(false, true)) {
                                    System.out.println(READY);
                                    System.out.flush();
                                }
                            }
                        })
                        .using((success, message, error) -> {
                            if (!success) {
                                failed.set(true);
                                System.err.println("engine stopped: " + message);
                                if (error != null) {
                                    error.printStackTrace();
                                }
                            }
                            ended.countDown();
                        })
                        .notifying(new Forwarder(producer))
                        .build();
        ExecutorService runner = Executors.newSingleThreadExecutor();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                engine.close();
                ended.await();
            } catch (Exception error) {
                error.printStackTrace();
            } finally {
                producer.close();
            }
        }));
        runner.execute(engine);
        ended.await();
        runner.shutdown();
        if (failed.get()) {
            System.exit(1);
        }
    }

    /**
     * Sends a batch, waits for every acknowledgement, and only then marks it processed: the
     * offset (and the slot's confirmed position) never passes an event the broker has not got.
     */
    private static final class Forwarder implements DebeziumEngine.ChangeConsumer<RecordChangeEvent<SourceRecord>> {
        private final KafkaProducer<byte[], byte[]> producer;

        Forwarder(KafkaProducer<byte[], byte[]> producer) {
            this.producer = producer;
        }

        @Override
        public void handleBatch(
                List<RecordChangeEvent<SourceRecord>> events,
                DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer)
                throws InterruptedException {
            List<Future<RecordMetadata>> sent = new ArrayList<>(events.size());
            for (RecordChangeEvent<SourceRecord> event : events) {
                SourceRecord record = event.record();
                if (record != null && record.topic() != null && record.value() != null) {
                    sent.add(producer.send(toKafka(record)));
                }
            }
            try {
                for (Future<RecordMetadata> acknowledged : sent) {
                    acknowledged.get();
                }
            } catch (ExecutionException error) {
                throw new IllegalStateException("the broker refused a record", error.getCause());
            }
            for (RecordChangeEvent<SourceRecord> event : events) {
                committer.markProcessed(event);
            }
            committer.markBatchFinished();
        }

        private static ProducerRecord<byte[], byte[]> toKafka(SourceRecord record) {
            RecordHeaders headers = new RecordHeaders();
            for (Header header : record.headers()) {
                if (header.value() != null) {
                    headers.add(header.key(), String.valueOf(header.value()).getBytes(StandardCharsets.UTF_8));
                }
            }
            headers.add("ce_specversion", SPEC_VERSION);
            headers.add("content-type", JSON);
            byte[] key = record.key() == null ? null : String.valueOf(record.key()).getBytes(StandardCharsets.UTF_8);
            byte[] value = String.valueOf(record.value()).getBytes(StandardCharsets.UTF_8);
            return new ProducerRecord<>(record.topic(), null, key, value, headers);
        }
    }
}
