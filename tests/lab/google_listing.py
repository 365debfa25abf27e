"""A real registry that lists digests the way Google's registries do.

gcr.io and Artifact Registry answer `tags/list` with a `manifest` map naming every manifest of
the repository, tagged or not (children of indexes included), with its media type and tags.
Distribution has no such listing, so this front relays every read to a real lab registry
unchanged and adds that map to `tags/list`, built from the registry's own storage folder (the
revision links it keeps per repository), which is exactly what the repository holds. Reads
only (GET and HEAD): push to the registry itself.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.lab.registry_lab import LabRegistry, free_port

_PASSED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Link")


class GoogleListing:
    def __init__(self, lab: LabRegistry) -> None:
        self.lab = lab
        self.port = free_port()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._relay("GET")

            def do_HEAD(self) -> None:
                self._relay("HEAD")

            def _relay(self, method: str) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() == "accept"}
                request = urllib.request.Request(
                    front.lab.url + self.path, headers=headers, method=method
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, body, answer = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, body, answer = error.code, error.read(), error.headers
                path = self.path.split("?")[0]
                if method == "GET" and status == 200 and path.endswith("/tags/list"):
                    listing = json.loads(body)
                    listing["manifest"] = front.manifests(path[len("/v2/") : -len("/tags/list")])
                    body = json.dumps(listing).encode()
                self.send_response(status)
                for name in _PASSED_HEADERS:
                    if name in answer and name != "Content-Length":
                        self.send_header(name, answer[name])
                length = answer.get("Content-Length") if method == "HEAD" else str(len(body))
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                if method == "GET":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def manifests(self, repository: str) -> dict[str, dict[str, Any]]:
        """gcr.io's map for one repository: every manifest it holds, with type and tags."""
        v2 = self.lab.root / "storage" / "docker" / "registry" / "v2"
        folder = v2 / "repositories" / repository / "_manifests"
        tags: dict[str, list[str]] = {}
        for link in sorted((folder / "tags").glob("*/current/link")):
            tags.setdefault(link.read_text().strip(), []).append(link.parent.parent.name)
        listed: dict[str, dict[str, Any]] = {}
        for link in sorted((folder / "revisions" / "sha256").glob("*/link")):
            digest = link.read_text().strip()
            hex_digest = digest.removeprefix("sha256:")
            data = v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
            listed[digest] = {
                "imageSizeBytes": "0",
                "layerId": "",
                "mediaType": _media_type(data),
                "tag": sorted(tags.get(digest, [])),
                "timeCreatedMs": "0",
                "timeUploadedMs": "0",
            }
        return listed

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _media_type(data: Path) -> str:
    body = json.loads(data.read_bytes())
    found = body.get("mediaType")
    if isinstance(found, str):
        return found
    return (
        "application/vnd.oci.image.index.v1+json"
        if "manifests" in body
        else ("application/vnd.oci.image.manifest.v1+json")
    )
