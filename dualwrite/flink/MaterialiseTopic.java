/*
 * One CDC topic materialised by Flink SQL, as an analytics user would read it (docs/topics.md).
 *
 * Declares a Kafka table over the topic with the `debezium-json` format, reads it from the
 * earliest offset up to the offsets that are latest when the job starts (a bounded scan, so the
 * job ends), runs `SELECT *` in streaming mode on a local mini-cluster (parallelism 1) and
 * applies the changelog Flink produces (+I, -U, +U, -D) to a table keyed by the primary key.
 * Flink, not this class, decides what each Debezium event means: this class only keeps the
 * latest row per key, as any keyed sink would.
 *
 * Usage: MaterialiseTopic [--properties FILE] BOOTSTRAP TOPIC KEY[,KEY...] "COLUMN SQL_TYPE"...
 * FILE: Kafka client settings (`dualwrite topics client-properties`: TLS, SASL), each passed
 * to the Kafka connector as a 'properties.<name>' option, as docs/topics.md tells users to.
 * Prints one JSON line per final row, {"row": {...}} (sorted by key), then one
 * {"changes": {"+I": n, "-U": n, "+U": n, "-D": n}} line counting the changelog it applied.
 * Exit 2 on a usage error; a Flink error (e.g. a record debezium-json cannot parse) is a
 * non-zero exit with Flink's stack trace on stderr.
 */

import java.io.FileInputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;

public final class MaterialiseTopic {

    private MaterialiseTopic() {}

    public static void main(String[] argv) throws Exception {
        Properties client = new Properties();
        String[] args = argv;
        if (argv.length >= 2 && argv[0].equals("--properties")) {
            try (FileInputStream in = new FileInputStream(argv[1])) {
                client.load(in);
            } catch (IOException e) {
                System.err.println("cannot read the Kafka client properties " + argv[1] + ": " + e.getMessage());
                System.exit(2);
            }
            args = java.util.Arrays.copyOfRange(argv, 2, argv.length);
        }
        if (args.length < 4) {
            System.err.println("usage: MaterialiseTopic [--properties FILE] BOOTSTRAP TOPIC KEY[,KEY...] \"COLUMN SQL_TYPE\"...");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        List<String> keys = List.of(args[2].split(","));
        List<String> columns = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (int i = 3; i < args.length; i++) {
            String[] parts = args[i].trim().split("\\s+", 2);
            if (parts.length != 2) {
                System.err.println("a column is \"NAME SQL_TYPE\", got: " + args[i]);
                System.exit(2);
            }
            names.add(parts[0]);
            columns.add(ident(parts[0]) + " " + parts[1]);
        }
        for (String key : keys) {
            if (!names.contains(key)) {
                System.err.println("the key column " + key + " is not among the columns");
                System.exit(2);
            }
        }

        // The mini-cluster's REST endpoint on a free loopback port: jobs may run side by side.
        Configuration local = Configuration.fromMap(Map.of(
            "parallelism.default", "1",
            "rest.bind-address", "127.0.0.1",
            "rest.bind-port", "0"));
        StringBuilder security = new StringBuilder();
        for (String name : new java.util.TreeSet<>(client.stringPropertyNames())) {
            if (!name.equals("bootstrap.servers") && !name.equals("group.id")) {  // set below
                security.append(" ").append(literal("properties." + name)).append(" = ")
                        .append(literal(client.getProperty(name))).append(",");
            }
        }
        TableEnvironment tables = TableEnvironment.create(
            EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(local).build());
        tables.executeSql(
            "CREATE TABLE cdc (" + String.join(", ", columns) + ") WITH ("
            + " 'connector' = 'kafka',"
            + " 'topic' = " + literal(topic) + ","
            + " 'properties.bootstrap.servers' = " + literal(bootstrap) + ","
            + " 'properties.group.id' = 'dualwrite-flink-materialise',"
            + security
            + " 'scan.startup.mode' = 'earliest-offset',"
            + " 'scan.bounded.mode' = 'latest-offset',"
            + " 'format' = 'debezium-json',"
            + " 'debezium-json.ignore-parse-errors' = 'false')");

        TableResult result = tables.executeSql("SELECT * FROM cdc");
        List<String> resultNames = result.getResolvedSchema().getColumnNames();
        int[] keyAt = keys.stream().mapToInt(resultNames::indexOf).toArray();
        Map<String, Row> state = new TreeMap<>();
        Map<String, Integer> changes = new LinkedHashMap<>();
        for (String kind : List.of("+I", "-U", "+U", "-D")) {
            changes.put(kind, 0);
        }
        try (CloseableIterator<Row> rows = result.collect()) {
            while (rows.hasNext()) {
                Row row = rows.next();
                StringBuilder key = new StringBuilder();
                for (int i = 0; i < keyAt.length; i++) {
                    key.append(i == 0 ? "" : "|").append(row.getField(keyAt[i]));
                }
                String kind = row.getKind().shortString();
                changes.merge(kind, 1, Integer::sum);
                switch (row.getKind()) {
                    case INSERT, UPDATE_AFTER -> state.put(key.toString(), row);
                    case UPDATE_BEFORE, DELETE -> state.remove(key.toString());
                    default -> throw new IllegalStateException("unknown row kind " + kind);
                }
            }
        }
        StringBuilder out = new StringBuilder();
        for (Row row : state.values()) {
            out.append("{\"row\": {");
            for (int i = 0; i < resultNames.size(); i++) {
                out.append(i == 0 ? "" : ", ").append(json(resultNames.get(i))).append(": ")
                   .append(json(row.getField(i)));
            }
            out.append("}}\n");
        }
        out.append("{\"changes\": {");
        int i = 0;
        for (Map.Entry<String, Integer> entry : changes.entrySet()) {
            out.append(i++ == 0 ? "" : ", ").append(json(entry.getKey())).append(": ").append(entry.getValue());
        }
        out.append("}}\n");
        System.out.print(out);
        System.out.flush();
        System.exit(0);  // the mini-cluster's non-daemon threads would otherwise keep the JVM up
    }

    /** A SQL identifier, back-quoted. */
    private static String ident(String name) {
        return "`" + name.replace("`", "``") + "`";
    }

    /** A SQL string literal. */
    private static String literal(String value) {
        return "'" + value.replace("'", "''") + "'";
    }

    /** A field value as JSON: numbers and booleans as such, null as null, the rest as strings. */
    private static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof BigDecimal decimal) {
            return decimal.toPlainString();
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        String text = value.toString();
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }
}
