#!/usr/bin/env python3
"""Checks a TLS listener against Mozilla's "intermediate" profile with sslyze (PyPI).

usage: tls_profile.py PORT SNI
Scans 127.0.0.1:PORT (SNI as given) with every scan command sslyze's Mozilla checker needs, then
checks the result against the intermediate configuration. Prints one JSON object:
  {"issues": {name: message}, "ignored": {name: message}, "tls_1_2_ciphers": [...], "tls_1_3_ciphers": [...],
   "versions": [...], "curves": [...]}
and exits 1 when any issue is left. Only findings about the certificate's trust are ignored
(certificate_path_validation: a test certificate chains to no public root); every protocol,
cipher, curve, key-exchange and vulnerability finding counts.
"""
import json
import sys

from sslyze import Scanner, ServerNetworkLocation, ServerScanRequest, ServerNetworkConfiguration
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

IGNORED = {"certificate_path_validation"}

port, sni = int(sys.argv[1]), sys.argv[2]
location = ServerNetworkLocation(hostname=sni, port=port, ip_address="127.0.0.1")
request = ServerScanRequest(
    server_location=location,
    network_configuration=ServerNetworkConfiguration(tls_server_name_indication=sni),
    scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
)
scanner = Scanner()
scanner.queue_scans([request])
result = next(iter(scanner.get_results()))

out = {"issues": {}, "ignored": {}, "tls_1_2_ciphers": [], "tls_1_3_ciphers": [], "versions": [], "curves": []}
if result.scan_result is None:
    out["issues"]["scan"] = f"scan did not complete: {result.scan_status} {result.connectivity_error_trace}"
    print(json.dumps(out))
    sys.exit(1)

scan = result.scan_result
for field, name in [("ssl_2_0_cipher_suites", "SSLv2"), ("ssl_3_0_cipher_suites", "SSLv3"), ("tls_1_0_cipher_suites", "TLSv1"),
                    ("tls_1_1_cipher_suites", "TLSv1.1"), ("tls_1_2_cipher_suites", "TLSv1.2"), ("tls_1_3_cipher_suites", "TLSv1.3")]:
    attempt = getattr(scan, field)
    if attempt.result and attempt.result.is_tls_version_supported:
        out["versions"].append(name)
        if name == "TLSv1.2":
            out["tls_1_2_ciphers"] = [c.cipher_suite.name for c in attempt.result.accepted_cipher_suites]
        if name == "TLSv1.3":
            out["tls_1_3_ciphers"] = [c.cipher_suite.name for c in attempt.result.accepted_cipher_suites]
if scan.elliptic_curves.result and scan.elliptic_curves.result.supported_curves:
    out["curves"] = [c.name for c in scan.elliptic_curves.result.supported_curves]

config = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
try:
    check_server_against_tls_configuration(result, config)
except ServerNotCompliantWithTlsConfiguration as e:
    for name, message in e.issues.items():
        (out["ignored"] if name in IGNORED else out["issues"])[name] = message
except Exception as e:  # an incomplete scan is a finding too
    out["issues"]["scan"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
sys.exit(1 if out["issues"] else 0)
