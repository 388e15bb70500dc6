// Validates GraphQL documents against GitHub's published schema: the introspection
// schema.json of @octokit/graphql-schema (its SDL file repeats fields, which strict
// parsers reject), loaded with graphql-js's buildClientSchema.
//
// stdin: a JSON array of {"name", "text", "variables"}. Each document is parsed and
// validated (every rule of the GraphQL spec: fields, arguments, fragments, types), and its
// variables are checked against their declared types (enum values of a list included).
// stdout: one line per problem, "NAME: message". Exit 0 when all are valid, 1 when one is
// not, 2 when the check cannot run.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildClientSchema, getVariableValues, parse, validate } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
let schema;
try {
  const introspection = JSON.parse(
    readFileSync(join(here, "node_modules/@octokit/graphql-schema/schema.json"), "utf8"),
  );
  schema = buildClientSchema(introspection.data ?? introspection);
} catch (err) {
  console.error(`cannot load GitHub's schema: ${err.message}`);
  process.exit(2);
}

let documents;
try {
  documents = JSON.parse(readFileSync(0, "utf8"));
} catch (err) {
  console.error(`cannot read the documents on stdin: ${err.message}`);
  process.exit(2);
}

let failed = 0;
for (const { name, text, variables } of documents) {
  let problems = [];
  try {
    const doc = parse(text);
    problems = validate(schema, doc).map((e) => e.message);
    if (problems.length === 0) {
      for (const def of doc.definitions) {
        if (def.kind !== "OperationDefinition") continue;
        const coerced = getVariableValues(schema, def.variableDefinitions ?? [], variables ?? {});
        problems.push(...(coerced.errors ?? []).map((e) => e.message));
      }
    }
  } catch (err) {
    problems = [err.message];
  }
  for (const p of problems) console.log(`${name}: ${p}`);
  if (problems.length) failed += 1;
}
console.error(`${documents.length - failed} of ${documents.length} documents valid`);
process.exit(failed ? 1 : 0);
