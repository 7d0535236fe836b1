// Package genesis holds the skills that ship inside the Talos binary and
// admits them at boot.
//
// # Admission
//
// The skills (one folder per skill under skills/) are embedded with go:embed
// together with pins.json, the list of their ids, versions, content hashes
// (quarantine.HashDir) and trust requirements, and pins.json.sig, an
// Ed25519 signature over the exact bytes of pins.json. [Admit] verifies the
// signature against [PublicKey], compiled into the binary, before it reads
// the list; then every skill goes through quarantine.Manager.AdmitGenesis:
// its files must hash to the pin, and so must the copy on disk under
// TALOS_HOME/skills/active. A refusal (a bad signature, an edited copy on
// disk) is written to the tier-1 audit log as "genesis_refused" and to the
// skill's quarantine audit trail; it is never fatal, and a second boot
// changes nothing. The developer command internal/genesis/cmd/sign pins and
// signs after a skill changes; docs/genesis-signing.md says how, and how to
// replace the key.
//
// # Trust levels and autoload
//
// TRUST_LEVEL (0–5) decides which admitted skills are active, that is,
// offered to the model:
//
//	0  read-only skills: file_manager lists and reads, the workspace mounted read-only
//	1  plus changes inside the workspace: file_manager writes and moves (read-write mount),
//	   and web_scraper: pages from the hosts the operator approved
//	2  plus running code the model wrote: code_executor; and browser_automation (a browser
//	   runs the pages' scripts and can fill and submit forms: it acts on the web, not only reads)
//	3  plus control of Talos-labelled containers: docker_control lists, inspects,
//	   starts and stops them (a container can be stopped or restarted, which can
//	   interrupt the operator's work, so it sits above running code)
//	4, 5  nothing more for genesis skills
//
// SKILL_AUTOLOAD_ENABLED=false admits and checks the skills at every boot
// but activates none of them.
//
// # Running
//
// A [Runner] runs the active skills, each call in a fresh sandbox container
// (package quarantine/sandbox) from the skill's active copy, whose hash the
// sandbox checks again. file_manager works in one workspace folder mounted
// at /workspace: absolute paths, ".." and symbolic links are refused, first
// by [CheckPath] and then inside the container. code_executor runs a
// snippet with no network, the sandbox's limits and timeout, and returns
// stdout, stderr and the exit code. web_scraper's container has no network
// either: a [Fetcher] run by Talos gets the page (allowed hosts only, never
// a loopback, private or link-local address, redirects checked, size and
// time caps) and the skill turns it into text. Calls of genesis skills
// record no strikes: what makes them fail is their input (the model's
// snippet, a hostile page), and strikes would let such input deprecate a
// built-in skill; the failure is returned to the model instead.
// docker_control's container has no network and no Docker access either:
// a [DockerEngine] run by Talos makes the calls through a socket proxy of
// its own serving sockproxy.DockerControlProfile (list, inspect, start,
// stop; lists filtered to Talos-labelled containers, any other container
// refused by the proxy) and the skill turns the answer into a report that
// never holds a container's environment, command or mounts.
// browser_automation runs a headless Chromium per conversation in a
// container of its own ([Browser]: Debian's chromium, no registry, 512 MiB,
// one CPU, read-only root, every capability dropped, only the configured
// Docker network), driven over its DevTools port; navigations must pass the
// web allowlist, and every request Chromium makes (navigations, redirects,
// a page's own images and scripts' requests) goes through an egress proxy
// Talos runs (egress.Proxy on a socket mounted into the container) that
// admits only the allowlisted hosts on their ports (80 and 443 unless an
// entry names one, as for web_scraper) and no private
// address unless an allow-address line opens it; a session is removed
// after 5 minutes without use, and a
// browser that died is started again after a backoff (5, 10, 20, 40, 80 s).
// Page text goes to the skill, which reports it, and to the firewall as
// web content.
// [Runner.Tools] and [Runner.Call] offer
// them to the model.
package genesis
