// Validates Strimzi custom resources against Strimzi's own CRD schemas, as published on the npm
// registry (@kubernetes-models/strimzi-kafka-operator, generated from the operator's CRDs).
// Reads a JSON array of objects on stdin; prints a JSON array of {kind, name, error} for each
// object (error null when it is valid) and exits 1 if any is invalid or of an unknown kind.
import * as v1 from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => {
  const name = object?.metadata?.name ?? null;
  const model = object?.apiVersion === "kafka.strimzi.io/v1" ? v1[object.kind] : undefined;
  if (model === undefined) {
    return { kind: object?.kind ?? null, name, error: `no schema for ${object?.apiVersion} ${object?.kind}` };
  }
  try {
    new model(object).validate();
    return { kind: object.kind, name, error: null };
  } catch (error) {
    return { kind: object.kind, name, error: String(error.message ?? error) };
  }
});
process.stdout.write(JSON.stringify(results) + "\n");
process.exitCode = results.every((result) => result.error === null) ? 0 : 1;
