// Validates rendered Kubernetes manifests offline, the way kubeconform
// -strict would: every document against the schema of its apiVersion/kind,
// plus a few checks the API server makes that a schema cannot express.
//
//   node validate.mjs FILE...      (multi-document YAML, e.g. helm template output)
//
// Prints one line per document ("ok Kind name" or the errors found) and exits
// 1 if any document is invalid, 2 on a usage or parse error.
//
// Schemas: kubernetes-models (validators generated from the Kubernetes
// OpenAPI document) and @kubernetes-models/prometheus-operator (generated
// from the Prometheus Operator CRDs, for ServiceMonitor). Their validators
// check types, required fields, enums and formats but, like the OpenAPI
// document, allow unknown fields; a misspelt field (readinesProbe) would
// pass. So the strict pass below walks each object against the field lists
// of the packages' TypeScript declarations (generated from the same
// OpenAPI document) and rejects any field the API does not define, as the
// API server does with fieldValidation=Strict.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, "node_modules");

// ---- Field lists from the .d.ts files -------------------------------------

// Exported long name (IIoK8sApiCoreV1Container) -> Map(field -> type text).
const interfaces = new Map();

function walkDts(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walkDts(p, out);
    else if (entry.name.endsWith(".d.ts")) out.push(p);
  }
}

function loadDeclarations(root) {
  const files = [];
  walkDts(root, files);
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const local = new Map();
    // export interface IContainer [extends TypeMeta] { ... }
    const re = /^export interface (\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/gm;
    for (let m; (m = re.exec(text)); ) {
      const fields = new Map();
      const lines = m[2].split("\n");
      for (let i = 0; i < lines.length; i++) {
        const f = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
        if (!f) continue;
        let type = f[2];
        if (type === "{") {
          // Only maps appear inline: { [key: string]: T; }
          const v = /^ {8}\[key: string\]: (.*);$/.exec(lines[i + 1] || "");
          type = v ? `{map ${v[1]}}` : "any";
        } else {
          type = type.replace(/;$/, "");
        }
        fields.set(f[1], type);
      }
      local.set(m[1], fields);
    }
    // export type { IContainer as IIoK8sApiCoreV1Container, ... };
    for (const t of text.matchAll(/^export type \{([^}]*)\}/gm)) {
      for (const pair of t[1].split(",")) {
        const a = /(\w+) as (\w+)/.exec(pair);
        if (a && local.has(a[1])) interfaces.set(a[2], local.get(a[1]));
      }
    }
    // Top-level kinds are also looked up by their short name.
    for (const [name, fields] of local) {
      if (fields.has("apiVersion") && fields.has("kind")) {
        const api = /^"(.*)"$/.exec(fields.get("apiVersion"));
        const kind = /^"(.*)"$/.exec(fields.get("kind"));
        if (api && kind) interfaces.set(`${api[1]}|${kind[1]}`, fields);
      }
    }
  }
}

// Reports every field of `value` that its declared type does not have.
function strictCheck(value, type, where, errors) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.*)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => strictCheck(v, m[1], `${where}/${i}`, errors));
    return;
  }
  if ((m = /^\{map (.*)\}$/.exec(type))) {
    if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) strictCheck(v, m[1], `${where}/${k}`, errors);
    }
    return;
  }
  const fields = interfaces.get(type);
  // Scalars, unions of literals and aliases such as Quantity or IntOrString
  // are left to the schema validator.
  if (!fields || typeof value !== "object" || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) {
      errors.push(`${where || "/"}: unknown field "${k}"`);
    } else {
      strictCheck(v, fields.get(k), `${where}/${k}`, errors);
    }
  }
}

// ---- Checks the API server makes beyond the schema ------------------------

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkName(doc, errors) {
  const name = doc.metadata?.name;
  if (typeof name !== "string" || name === "") {
    errors.push("/metadata/name: missing");
    return;
  }
  if (doc.kind === "Service") {
    if (name.length > 63 || !dns1035Label.test(name)) {
      errors.push(`/metadata/name: "${name}" is not a DNS-1035 label (Service names)`);
    }
  } else if (name.length > 253 || !dns1123Subdomain.test(name)) {
    errors.push(`/metadata/name: "${name}" is not a DNS-1123 subdomain`);
  }
}

function checkLabels(labels, where, errors) {
  for (const [k, v] of Object.entries(labels || {})) {
    const parts = k.split("/");
    const name = parts.pop();
    const prefix = parts.join("/");
    if (parts.length > 1 || (prefix && (prefix.length > 253 || !dns1123Subdomain.test(prefix))) ||
        !name || name.length > 63 || !labelValue.test(name)) {
      errors.push(`${where}: invalid label key "${k}"`);
    }
    if (typeof v !== "string" || v.length > 63 || !labelValue.test(v)) {
      errors.push(`${where}/${k}: invalid label value ${JSON.stringify(v)}`);
    }
  }
}

function checkPodSpec(spec, where, errors) {
  if (!spec) return;
  const volumes = new Set();
  for (const [i, v] of (spec.volumes || []).entries()) {
    if (volumes.has(v.name)) errors.push(`${where}/volumes/${i}/name: duplicate "${v.name}"`);
    if (!dns1123Label.test(v.name || "")) errors.push(`${where}/volumes/${i}/name: not a DNS-1123 label`);
    volumes.add(v.name);
  }
  for (const claim of spec.__claims || []) volumes.add(claim);
  const containers = [...(spec.initContainers || []), ...(spec.containers || [])];
  for (const [ci, c] of containers.entries()) {
    const cw = `${where}/containers/${ci}`;
    const ports = new Set();
    for (const [pi, p] of (c.ports || []).entries()) {
      if (p.name === undefined) continue;
      if (ports.has(p.name)) errors.push(`${cw}/ports/${pi}/name: duplicate "${p.name}"`);
      if (p.name.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || !/[a-z]/.test(p.name)) {
        errors.push(`${cw}/ports/${pi}/name: "${p.name}" is not an IANA service name`);
      }
      ports.add(p.name);
    }
    const mounts = new Set();
    for (const [mi, m] of (c.volumeMounts || []).entries()) {
      if (!volumes.has(m.name)) errors.push(`${cw}/volumeMounts/${mi}/name: no volume named "${m.name}"`);
      if (mounts.has(m.mountPath)) errors.push(`${cw}/volumeMounts/${mi}/mountPath: duplicate "${m.mountPath}"`);
      mounts.add(m.mountPath);
    }
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
      if (typeof port === "string" && !ports.has(port)) {
        errors.push(`${cw}/${probe}: port "${port}" is not a named port of the container`);
      }
      const handlers = ["exec", "httpGet", "tcpSocket", "grpc"].filter((h) => c[probe]?.[h]);
      if (c[probe] && handlers.length !== 1) {
        errors.push(`${cw}/${probe}: needs exactly one handler, has ${handlers.length}`);
      }
    }
  }
}

function checkWorkload(doc, errors) {
  const spec = doc.spec || {};
  const want = spec.selector?.matchLabels || {};
  const have = spec.template?.metadata?.labels || {};
  for (const [k, v] of Object.entries(want)) {
    if (have[k] !== v) errors.push(`/spec/template/metadata/labels: selector ${k}=${v} does not match`);
  }
  checkLabels(have, "/spec/template/metadata/labels", errors);
  const podSpec = { ...(spec.template?.spec || {}) };
  podSpec.__claims = (spec.volumeClaimTemplates || []).map((c) => c.metadata?.name);
  checkPodSpec(podSpec, "/spec/template/spec", errors);
}

// ---- Driver ----------------------------------------------------------------

async function modelFor(apiVersion, kind) {
  const candidates = apiVersion.startsWith("monitoring.coreos.com/")
    ? [`@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`]
    : [`kubernetes-models/${apiVersion}/${kind}`];
  for (const c of candidates) {
    try {
      const mod = await import(c);
      if (mod[kind]) return mod[kind];
    } catch {
      // Try the next package.
    }
  }
  return null;
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node validate.mjs FILE...");
    return 2;
  }
  loadDeclarations(path.join(modules, "kubernetes-models"));
  loadDeclarations(path.join(modules, "@kubernetes-models"));

  let bad = 0;
  let count = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    // YAML 1.1, as the API server's parser reads it (0440 is octal).
    const docs = parseAllDocuments(text, { version: "1.1" });
    for (const d of docs) {
      if (d.errors.length) {
        console.log(`FAIL ${file}: YAML: ${d.errors[0].message}`);
        bad++;
        continue;
      }
      const doc = d.toJS();
      if (doc === null || doc === undefined) continue;  // empty document
      count++;
      const errors = [];
      const id = `${doc.kind}/${doc.metadata?.name}`;
      const Model = doc.apiVersion && doc.kind ? await modelFor(doc.apiVersion, doc.kind) : null;
      if (!Model) {
        console.log(`FAIL ${file}: ${id}: no schema for apiVersion ${doc.apiVersion} kind ${doc.kind}`);
        bad++;
        continue;
      }
      try {
        new Model(doc).validate();
      } catch (e) {
        errors.push(...String(e.message).split(/, (?=data)/).map((s) => s.replace(/^data/, "")));
      }
      const fields = interfaces.get(`${doc.apiVersion}|${doc.kind}`);
      if (!fields) {
        errors.push(`no field list for ${doc.apiVersion} ${doc.kind} (strict check impossible)`);
      } else {
        strictCheck(doc, `${doc.apiVersion}|${doc.kind}`, "", errors);
      }
      checkName(doc, errors);
      checkLabels(doc.metadata?.labels, "/metadata/labels", errors);
      if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"].includes(doc.kind)) {
        checkWorkload(doc, errors);
      }
      if (errors.length) {
        bad++;
        console.log(`FAIL ${file}: ${id} (${doc.apiVersion})`);
        for (const e of errors) console.log(`    ${e}`);
      } else {
        console.log(`ok   ${file}: ${id} (${doc.apiVersion})`);
      }
    }
  }
  console.log(`${count - bad} valid, ${bad} invalid`);
  return bad ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
