// A local sigstore instance for tests: Fulcio (CA + CT log) and Rekor v1 from @sigstore/mock's
// handlers, served over HTTP on 127.0.0.1. @sigstore/mock is a nock interceptor; its handler
// factories are reused here behind node's own http server.
//
// Usage: node server.js DIR. Writes DIR/trusted_root.json, DIR/trust_config.json and, once
// listening, DIR/ready.json ({"port": N}). GET /stats answers how many certificates and log
// entries were issued, and the subjects of the tokens Fulcio saw.
//
// Three differences between what sigstore-python sends and what the mock handlers read are
// bridged here:
//   1. the identity token travels as a Bearer header; the handler reads it from the body's
//      credentials.oidcIdentityToken;
//   2. the CSR is base64 of a PEM document; the handler wants the PEM itself;
//   3. the handler's Rekor echoes a proposed DSSE entry as the logged body, which no client can
//      verify; the logged body is rewritten to Rekor's dsse 0.0.1 shape (hashes, signatures).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const mock = require('@sigstore/mock');

const dir = process.argv[2];
const stats = { certificates: 0, entries: 0, subjects: [] };

const b64 = (buf) => Buffer.from(buf).toString('base64');
const sha256 = (data) => crypto.createHash('sha256').update(data).digest();

function keyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function fulcioBody(raw, authorization) {
  const body = JSON.parse(raw);
  const token = (authorization || '').replace(/^Bearer /, '');
  body.credentials = { oidcIdentityToken: token };
  const csr = body.certificateSigningRequest;
  if (csr && !csr.startsWith('-----BEGIN')) {
    body.certificateSigningRequest = Buffer.from(csr, 'base64').toString();
  }
  const claims = JSON.parse(Buffer.from(token.split('.')[1] || '', 'base64url').toString() || '{}');
  stats.subjects.push(claims.sub || '');
  return JSON.stringify(body);
}

function rekorBody(raw) {
  const entry = JSON.parse(raw);
  if (entry.kind !== 'dsse') return raw;
  const proposed = entry.spec.proposedContent;
  const envelope = JSON.parse(proposed.envelope);
  const rewritten = {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(proposed.envelope).toString('hex') },
      payloadHash: {
        algorithm: 'sha256',
        value: sha256(Buffer.from(envelope.payload, 'base64')).toString('hex'),
      },
      signatures: envelope.signatures.map((s, i) => ({
        signature: s.sig,
        verifier: proposed.verifiers[i] || proposed.verifiers[0],
      })),
    },
  };
  return JSON.stringify(rewritten);
}

function publicKeyEntry(spki, url, start) {
  return {
    baseUrl: url,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: b64(spki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: b64(sha256(spki)) },
  };
}

async function main() {
  const start = new Date(Date.now() - 3600 * 1000).toISOString();
  const ctKeys = keyPair();
  const ctlog = await mock.initializeCTLog(ctKeys);
  const ca = await mock.initializeCA(keyPair(), ctlog);
  const fulcio = mock.fulcioHandler(ca);
  const rekorKeys = keyPair();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks).toString();
      let answer = { statusCode: 404, response: 'not found' };
      if (req.method === 'GET' && req.url === '/stats') {
        answer = { statusCode: 200, response: JSON.stringify(stats) };
      } else if (req.method === 'POST' && req.url === fulcio.path) {
        answer = await fulcio.fn(fulcioBody(raw, req.headers.authorization));
        if (answer.statusCode === 201) stats.certificates += 1;
      } else if (req.method === 'POST' && req.url === rekor.path) {
        answer = await rekor.fn(rekorBody(raw));
        if (answer.statusCode === 201) stats.entries += 1;
      }
      res.writeHead(answer.statusCode, { 'Content-Type': answer.contentType || 'text/plain' });
      res.end(answer.response);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const tlog = await mock.initializeTLog(url, rekorKeys);
  const rekor = mock.rekorHandler(tlog);
  const rekorSpki = rekorKeys.publicKey.export({ format: 'der', type: 'spki' });
  const ctSpki = ctKeys.publicKey.export({ format: 'der', type: 'spki' });
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [publicKeyEntry(rekorSpki, url, start)],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: url,
        certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
        validFor: { start },
      },
    ],
    ctlogs: [publicKeyEntry(ctSpki, url, start)],
    timestampAuthorities: [],
  };
  const service = { url, majorApiVersion: 1, validFor: { start }, operator: 'cip.test' };
  const trustConfig = {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot,
    signingConfig: {
      mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
      caUrls: [service],
      oidcUrls: [],
      rekorTlogUrls: [service],
      tsaUrls: [],
      rekorTlogConfig: { selector: 'ANY' },
      tsaConfig: { selector: 'ANY' },
    },
  };
  const write = (name, value) =>
    fs.writeFileSync(path.join(dir, name), JSON.stringify(value, null, 2));
  write('trusted_root.json', trustedRoot);
  write('trust_config.json', trustConfig);
  write('ready.json', { port: server.address().port, url });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
