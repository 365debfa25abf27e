#!/usr/bin/env bash
# Subscribe the auditor to the registry's change events (Container Registry and Artifact
# Registry publish them to the topic `gcr` of the registry's project), with authenticated
# pushes: Pub/Sub signs an OIDC token as PUSHER for AUDIENCE; Cloud Run lets only PUSHER in,
# and cip checks the same token (--pubsub-audience, --pubsub-allowed-email). Projects made
# before April 2021 also grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator.
set -euo pipefail

PROJECT=my-project
REGION=us-central1
SERVICE=cip-audit
PUSHER=cip-audit-push@${PROJECT}.iam.gserviceaccount.com

URL=$(gcloud run services describe "$SERVICE" --project="$PROJECT" --region="$REGION" --format='value(status.url)')
AUDIENCE=${URL}/pubsub  # cip audit serve --pubsub-audience=<this>

# The topic exists once Artifact Registry or Container Registry published to it; create it
# otherwise (an error that it exists already is harmless).
gcloud pubsub topics create gcr --project="$PROJECT" || true

gcloud iam service-accounts create cip-audit-push --project="$PROJECT" \
    --display-name="Pub/Sub pushes to the cip auditor"
gcloud run services add-iam-policy-binding "$SERVICE" --project="$PROJECT" --region="$REGION" \
    --member="serviceAccount:${PUSHER}" --role=roles/run.invoker

# Rejections are answered 200 (not redelivered); errors 500, so Pub/Sub retries them.
gcloud pubsub subscriptions create cip-audit --project="$PROJECT" \
    --topic=gcr \
    --push-endpoint="${URL}/pubsub" \
    --push-auth-service-account="$PUSHER" \
    --push-auth-token-audience="$AUDIENCE" \
    --ack-deadline=60 \
    --min-retry-delay=10s \
    --max-retry-delay=600s
