// An independent check of a sigstore bundle, offline: @sigstore/verify (sigstore-js) with the
// lab's trusted root. Usage: node verify.js TRUSTED_ROOT BUNDLE IDENTITY ISSUER. Prints the
// signed payload's JSON on success (exit 0), the verifier's error otherwise (exit 1).
'use strict';

const fs = require('fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [rootPath, bundlePath, identity, issuer] = process.argv.slice(2);
try {
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 1 });
  verifier.verify(toSignedEntity(bundle), {
    subjectAlternativeName: identity,
    extensions: { issuer },
  });
  const payload = Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8');
  process.stdout.write(payload);
} catch (error) {
  process.stderr.write(`${error.code || error.name}: ${error.message}\n`);
  process.exit(1);
}
