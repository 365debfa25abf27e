"""Option groups shared by commands, defined once so every command spells a flag the same way.

Each group is a decorator adding its options; the command receives them as keyword arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from typing import Any, TypeVar, cast

import click

from cip.cli.handling import remember_output
from cip.cli.network import NetworkFlags
from cip.cli.params import GoDuration

F = TypeVar("F", bound=Callable[..., Any])


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def manifest_options(func: F) -> F:
    """Where manifests come from: --manifest and --thin-manifest-dir, both repeatable."""
    return _apply(
        func,
        [
            click.option(
                "--manifest",
                "manifests",
                multiple=True,
                metavar="FILE",
                help="A plain promoter manifest (registries + images). Repeatable.",
            ),
            click.option(
                "--thin-manifest-dir",
                "thin_dirs",
                multiple=True,
                metavar="DIR",
                help="A folder with manifests/<p>/promoter-manifest.yaml and "
                "images/<p>/images.yaml. Repeatable.",
            ),
        ],
    )


def selection_options(func: F) -> F:
    """Which part of the manifests a command looks at: a git diff, and image names."""
    return _apply(
        func,
        [
            click.option(
                "--diff-base",
                "--base",
                "diff_base",
                metavar="REF",
                help="Plan only digests on manifest lines added or changed since git REF.",
            ),
            click.option(
                "--manifest-diff-since",
                metavar="WHEN",
                help="Like --diff-base, from the last commit before a git date "
                "(e.g. '14 days ago').",
            ),
            click.option(
                "--use-prow-manifest-diff",
                is_flag=True,
                help="Like --diff-base, with the base a Prow job implies "
                "(JOB_TYPE, PULL_BASE_SHA).",
            ),
            click.option(
                "--image",
                "images",
                multiple=True,
                metavar="NAME",
                help="Only this image. Repeatable.",
            ),
        ],
    )


def _positive(ctx: click.Context, param: click.Parameter, value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise click.BadParameter("must be longer than 0, or retries would not wait at all")
    return value


def network_options(func: F) -> F:
    """How registries are reached: TLS, plain HTTP, concurrency, rate limits and retries; the
    command receives them as `network: NetworkFlags`, which builds its registry pool."""
    names = [f.name for f in fields(NetworkFlags)]

    @functools.wraps(func)
    def packed(*args: Any, **kwargs: Any) -> Any:
        flags = NetworkFlags(**{name: kwargs.pop(name) for name in names})
        return func(*args, network=flags, **kwargs)

    return _apply(
        cast(F, packed),
        [
            click.option(
                "--insecure-registry",
                "insecure",
                multiple=True,
                metavar="HOST[:PORT]",
                help="Allow plain HTTP to this host (loopback hosts always may). Repeatable.",
            ),
            click.option(
                "--ca-file",
                metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, readable=True),
                help="Also trust this CA bundle (PEM) for TLS.",
            ),
            click.option(
                "--authfile",
                metavar="FILE",
                type=click.Path(exists=True, dir_okay=False),
                help="Registry credentials (a containers auth.json), as skopeo's --authfile. "
                "Default: $REGISTRY_AUTH_FILE.",
            ),
            click.option(
                "--concurrency",
                "--threads",  # kpromo's legacy name for the same setting
                "concurrency",
                default=32,
                show_default=True,
                type=click.IntRange(1, 1024),
                help="Registry requests in flight at once.",
            ),
            click.option(
                "--rate-limit",
                "rate_limits",
                multiple=True,
                metavar="[HOST=]N",
                help="Cap requests per second, for all hosts or one. "
                "Default: adaptive (cut on 429).",
            ),
            click.option(
                "--host-concurrency",
                multiple=True,
                metavar="[HOST=]N",
                help="Cap requests in flight per host, for all hosts or one.",
            ),
            click.option(
                "--retry-timeout",
                default="5m",
                show_default=True,
                type=GoDuration(),
                help="How long a registry may keep failing (5xx, 429, no answer) before its "
                "requests give up; Go syntax: 90s, 5m, 1h. 0 means no retries.",
            ),
            click.option(
                "--retry-max-backoff",
                default="30s",
                show_default=True,
                type=GoDuration(),
                callback=_positive,
                help="The longest wait between two retries (backoff doubles up to it).",
            ),
        ],
    )


def output_option(help_text: str) -> Callable[[F], F]:
    """--output FORMAT; each command checks the formats it renders.

    Eager, so that an error in any other flag already knows whether to answer in JSON.
    """
    return click.option(
        "--output", metavar="FORMAT", help=help_text, is_eager=True, callback=remember_output
    )


sigstore_trust_config_option = click.option(
    "--sigstore-trust-config",
    metavar="FILE",
    help="The sigstore instance to sign with and trust (a client trust config "
    "JSON). Default: the public-good instance.",
)

verify_key_option = click.option(
    "--verify-key",
    metavar="FILE",
    help="The PEM public key signatures must verify with "
    "(default: the public half of --signing-key, where one is given).",
)


def signing_options(func: F) -> F:
    """How promoted images are signed (cosign's key mode), shared by run and sigcheck."""
    return _apply(
        func,
        [
            click.option(
                "--signing-key",
                metavar="FILE",
                help="Sign with this key: a PEM P-256 private key or cosign's encrypted "
                "cosign.key (password in COSIGN_PASSWORD). KMS URIs are not supported.",
            ),
            click.option(
                "--identity-token",
                metavar="TOKEN|FILE|-",
                help="Sign keylessly (Fulcio, Rekor) with this OIDC identity token: the token, "
                "a file holding it (read again for every fresh certificate), or - for standard "
                "input. Default with --sign: $SIGSTORE_ID_TOKEN.",
            ),
            click.option(
                "--signer-account",
                metavar="EMAIL",
                help="Sign keylessly as this Google service account: its identity token is "
                "minted through IAM Credentials generateIdToken (needs the google extra).",
            ),
            sigstore_trust_config_option,
            click.option(
                "--signature-format",
                type=click.Choice(["legacy", "bundle", "both"]),
                default="legacy",
                show_default=True,
                help="legacy: cosign's sha256-<hex>.sig tag; bundle: a sigstore bundle as an "
                "OCI 1.1 referrer, as cosign v3 writes; both.",
            ),
            click.option(
                "--sign/--no-sign",
                "sign",
                default=None,
                help="Sign promoted images (default: on when --signing-key, --identity-token or "
                "--signer-account is given); --sign=false turns signing off.",
            ),
            click.option(
                "--primary-registry",
                metavar="REG",
                help="The destination registry that signs; the others receive its signature. "
                "Default: each manifest's first destination.",
            ),
            click.option(
                "--signing-identity",
                metavar="REG",
                help="Name images in signatures as REG/IMAGE (e.g. registry.k8s.io) instead of "
                "the primary registry's name.",
            ),
            click.option(
                "--signature-annotation",
                "signature_annotations",
                multiple=True,
                metavar="KEY=VALUE",
                help="Add an annotation to every signed payload (cosign's -a). Repeatable.",
            ),
            click.option(
                "--copy-attached/--no-copy-attached",
                default=True,
                show_default=True,
                help="Merge what staging attaches to an image (.sig, .att, .sbom, referrers) "
                "into every destination with it (--copy-attached=false turns it off).",
            ),
            click.option(
                "--max-signature-ops",
                default=50,
                show_default=True,
                type=click.IntRange(1, 10_000),
                help="Digests signed at once.",
            ),
            click.option(
                "--max-signature-copies",
                default=50,
                show_default=True,
                type=click.IntRange(1, 10_000),
                help="Signatures replicated to mirrors at once.",
            ),
        ],
    )


def max_image_size_option(default: int | None, help_text: str) -> Callable[[F], F]:
    """--max-image-size MiB: kpromo's flag; `cip run` applies it when given, `cip check` always."""
    return click.option(
        "--max-image-size",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        metavar="MIB",
        help=help_text,
    )


def keyless_policy_flags() -> list[Callable[[Any], Any]]:
    """The identity a keyless signature must carry, as cosign verify names it."""
    return [
        click.option(
            "--certificate-identity",
            metavar="ID",
            help="Keyless signatures must be certified for exactly this identity "
            "(an email or URI of the certificate).",
        ),
        click.option(
            "--certificate-identity-regexp",
            metavar="RE",
            help="Keyless signatures' identity must match this regular expression.",
        ),
        click.option(
            "--certificate-oidc-issuer",
            metavar="URL",
            help="Keyless signatures must be certified for an identity of this OIDC issuer.",
        ),
        click.option(
            "--certificate-oidc-issuer-regexp",
            metavar="RE",
            help="Keyless signatures' OIDC issuer must match this regular expression.",
        ),
    ]


def keyless_policy_options(func: F) -> F:
    """The identity a keyless signature must carry, as cosign verify names it."""
    return _apply(func, keyless_policy_flags())


SHARD_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in Indexed Jobs


def shard_options(func: F) -> F:
    """Which shard of a run this process does: --shard-index and --shard-count."""
    return _apply(
        func,
        [
            click.option(
                "--shard-index",
                type=click.IntRange(0),
                envvar=SHARD_INDEX_ENV,
                show_envvar=True,
                metavar="I",
                help="Do shard I (0-based) of --shard-count. Default: $JOB_COMPLETION_INDEX, "
                "which Kubernetes sets in Indexed Jobs.",
            ),
            click.option(
                "--shard-count",
                type=click.IntRange(1),
                metavar="N",
                help="Split the run into N shards that share no image name and no digest.",
            ),
        ],
    )


def shard_from_options(index: int | None, count: int | None) -> tuple[int, int] | None:
    """(index, count) when sharding was asked for; a usage error when it is half given.

    The index may come from JOB_COMPLETION_INDEX; it counts only when --shard-count is given,
    so a plain run inside an Indexed Job is not split by accident.
    """
    context = click.get_current_context()
    from_flag = (
        context.get_parameter_source("shard_index") is click.core.ParameterSource.COMMANDLINE
    )
    if count is None:
        if from_flag:
            raise click.UsageError("--shard-index needs --shard-count")
        return None
    if index is None:
        raise click.UsageError(f"--shard-count needs --shard-index or ${SHARD_INDEX_ENV}")
    if index >= count:
        source = "--shard-index" if from_flag else f"${SHARD_INDEX_ENV}"
        raise click.UsageError(f"{source}={index} is not below --shard-count={count}")
    return index, count
