package graphgen;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;
import org.neo4j.server.configuration.ServerSettings;

/**
 * graphgen's local Neo4j: an in-process Neo4j Community server (neo4j-harness) with Bolt and
 * HTTP on loopback and Neo4j Browser at http://127.0.0.1:HTTP_PORT/browser/.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) graphgen.Neo4jTestServer DATA_DIR
 *      [--bolt-port N] [--http-port N] [--host 127.0.0.1] [--password PW]
 *      [--page-cache 256m] [--watch-stdin]
 * </pre>
 *
 * Ports default to 0 (a free port is picked; give real ports so that the discovery document
 * Browser reads advertises the right Bolt address). Without --password authentication is off; with
 * it, user "neo4j" gets that password. The store lives in a fresh folder under DATA_DIR.
 * When the server is up it prints one line to stdout:
 *
 * <pre>GRAPHGEN_NEO4J_READY bolt=bolt://127.0.0.1:7687 http=http://127.0.0.1:7474 dir=...</pre>
 *
 * It stops cleanly on SIGTERM/SIGINT, and with --watch-stdin also when stdin closes (so a
 * test process that dies never leaves a server behind).
 */
public final class Neo4jTestServer {
    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args[0].startsWith("-")) {
            System.err.println("usage: Neo4jTestServer DATA_DIR [--bolt-port N] [--http-port N] [--host H]"
                    + " [--password PW] [--page-cache SIZE] [--watch-stdin]");
            System.exit(2);
        }
        Path dataDir = Path.of(args[0]).toAbsolutePath();
        int boltPort = 0, httpPort = 0;
        String host = "127.0.0.1", password = null, pageCache = "256m";
        boolean watchStdin = false;
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--bolt-port" -> boltPort = Integer.parseInt(args[++i]);
                case "--http-port" -> httpPort = Integer.parseInt(args[++i]);
                case "--host" -> host = args[++i];
                case "--password" -> password = args[++i];
                case "--page-cache" -> pageCache = args[++i];
                case "--watch-stdin" -> watchStdin = true;
                default -> {
                    System.err.println("unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        Files.createDirectories(dataDir);

        long t0 = System.nanoTime();
        var builder = Neo4jBuilders.newInProcessBuilder(dataDir);
        if (boltPort != 0) {
            // Browser learns where Bolt is from the discovery document at http://host:port/
            builder = builder.withConfig(BoltConnector.advertised_address, new SocketAddress(host, boltPort));
        }
        if (httpPort != 0) {
            builder = builder.withConfig(HttpConnector.advertised_address, new SocketAddress(host, httpPort));
        }
        Neo4j neo4j = builder
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress(host, boltPort))
                .withConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .withConfig(HttpConnector.enabled, true)
                .withConfig(HttpConnector.listen_address, new SocketAddress(host, httpPort))
                .withConfig(GraphDatabaseSettings.auth_enabled, password != null)
                .withConfig(GraphDatabaseSettings.pagecache_memory,
                        org.neo4j.io.ByteUnit.parse(pageCache))
                .withConfig(GraphDatabaseInternalSettings.udc_network_enabled, false)
                .withConfig(ServerSettings.allow_telemetry, false)
                .build();
        if (password != null) {
            // Embedded transactions run with full rights, so this sets the initial password
            // without the "change on first login" step a fresh server demands.
            neo4j.databaseManagementService().database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            neo4j.close();
            stopped.countDown();
        }, "neo4j-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);

        System.out.printf("GRAPHGEN_NEO4J_READY bolt=%s http=%s dir=%s started_in=%.1fs%n",
                neo4j.boltURI(), neo4j.httpURI(), dataDir, (System.nanoTime() - t0) / 1e9);
        System.out.flush();

        if (watchStdin) {
            InputStream in = System.in;
            byte[] buf = new byte[256];
            try {
                while (in.read(buf) >= 0) {
                    // ignore input; EOF means our parent is gone or asked us to stop
                }
            } catch (IOException ignored) {
                // treat a broken stdin like EOF
            }
            System.exit(0); // runs the shutdown hook
        }
        stopped.await();
    }
}
