//! Where telemetry goes, decided once at start from `[telemetry]`, the
//! standard `OTEL_*` variables and the registry: plain data, pure, tested
//! here. The environment of one run wins over the config file, which wins over
//! the registry's collector; `OTEL_SDK_DISABLED=true` and `enabled = false`
//! turn export off whoever names a collector.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{OtlpProtocol, TelemetryConfig};
use crate::net::tls::ClientFiles;

/// OTLP/HTTP signal paths appended to a base endpoint (OTLP exporter spec).
const TRACES_PATH: &str = "v1/traces";
const METRICS_PATH: &str = "v1/metrics";
/// The OTLP gRPC services' `Export` methods, as HTTP/2 paths (`/package.Service/Method`).
const TRACES_GRPC: &str = "opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_GRPC: &str = "opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// What the exporter does; `None` from [`Plan::resolve`] means telemetry is off.
#[derive(Clone, PartialEq)]
pub struct Plan {
    /// Full URL spans are POSTed to; `None`: spans are not recorded.
    pub traces: Option<String>,
    /// Full URL metrics are POSTed to; `None`: metrics are not recorded.
    pub metrics: Option<String>,
    /// Both signals go as gRPC calls (the URLs then end in the method's path).
    pub grpc: bool,
    /// A private CA and a client certificate for the collector's TLS.
    pub tls: ClientFiles,
    /// Sent with every export (may carry an API key: never printed).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub export_interval: Duration,
    pub span_delay: Duration,
    pub max_queue: usize,
    /// Share of new traces recorded (`OTEL_TRACES_SAMPLER`, `sample_ratio`).
    pub sample_ratio: f64,
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, then `[telemetry] resource_attributes` over them.
    pub resource: Vec<(String, String)>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("traces", &self.traces.as_deref().map(redact))
            .field("metrics", &self.metrics.as_deref().map(redact))
            .field("grpc", &self.grpc)
            .field("tls", &self.tls)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("export_interval", &self.export_interval)
            .field("span_delay", &self.span_delay)
            .field("max_queue", &self.max_queue)
            .field("sample_ratio", &self.sample_ratio)
            .finish()
    }
}

/// A collector the registry names (its operator's `_meta`), the lowest precedence.
pub type RegistryCollector = Option<String>;

impl Plan {
    /// Resolve the plan; `env` reads one variable (the process environment in
    /// `serve`, a map in tests). `Err` is a warning to log: a setting that
    /// cannot be used, with telemetry then off.
    pub fn resolve(
        cfg: &TelemetryConfig,
        env: &dyn Fn(&str) -> Option<String>,
        registry: RegistryCollector,
    ) -> Result<Option<Plan>, String> {
        let var = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) || cfg.enabled == Some(false) {
            return Ok(None);
        }
        // A setting a signal may have its own of (`OTEL_EXPORTER_OTLP_TRACES_<S>`),
        // else the general one (`OTEL_EXPORTER_OTLP_<S>`): (variable, value).
        let signal_var = |signal: &str, setting: &str| -> Option<(String, String)> {
            [
                format!("OTEL_EXPORTER_OTLP_{signal}_{setting}"),
                format!("OTEL_EXPORTER_OTLP_{setting}"),
            ]
            .into_iter()
            .find_map(|k| var(&k).map(|v| (k, v)))
        };
        // The signal's variable, else the general one, else the config.
        let protocol = |signal: &str| -> Result<OtlpProtocol, String> {
            let Some((name, p)) = signal_var(signal, "PROTOCOL") else {
                return Ok(cfg.protocol);
            };
            match p.as_str() {
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                "grpc" => Ok(OtlpProtocol::Grpc),
                _ => Err(format!(
                    "{name}={p}: mcp-bridge exports OTLP over http/protobuf or grpc (http/json is not supported); telemetry is off"
                )),
            }
        };
        let (traces_protocol, metrics_protocol) = (protocol("TRACES")?, protocol("METRICS")?);
        let base = var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .or_else(|| cfg.endpoint.clone())
            .or(registry);
        // A signal's URL, when it has one, if it is an http(s) URL.
        let check = |url: Option<String>| -> Result<Option<String>, String> {
            match url.as_deref().map(url::Url::parse) {
                None => Ok(None),
                Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Ok(url),
                Some(_) => Err(format!(
                    "the OTLP endpoint {} is not an http(s) URL (telemetry is off)",
                    redact(url.as_deref().unwrap_or_default())
                )),
            }
        };
        // A signal's URL; `(http, grpc)` are the paths appended to a base URL.
        let signal = |specific: &str,
                      protocol: OtlpProtocol,
                      (http, grpc): (&str, &str),
                      wanted: bool,
                      exporter: &str|
         -> Result<Option<String>, String> {
            if !wanted || var(exporter).is_some_and(|v| v == "none") {
                return Ok(None);
            }
            let specific = var(specific);
            // OTLP/HTTP signal URLs are used as they are; gRPC ones name the
            // collector, and the call's path is added.
            let (base, path) = match protocol {
                OtlpProtocol::HttpProtobuf if specific.is_some() => return check(specific),
                OtlpProtocol::HttpProtobuf => (base.as_deref(), http),
                OtlpProtocol::Grpc => (specific.as_deref().or(base.as_deref()), grpc),
            };
            check(base.map(|b| format!("{}/{path}", b.trim_end_matches('/'))))
        };
        let traces = signal(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            traces_protocol,
            (TRACES_PATH, TRACES_GRPC),
            cfg.traces,
            "OTEL_TRACES_EXPORTER",
        )?;
        let metrics = signal(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            metrics_protocol,
            (METRICS_PATH, METRICS_GRPC),
            cfg.metrics,
            "OTEL_METRICS_EXPORTER",
        )?;
        // Both signals go one way: where both are exported, their values must
        // agree. Whether to take the traces' value.
        let one_way = |setting: &str, agree: bool| -> Result<bool, String> {
            if !agree && traces.is_some() && metrics.is_some() {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_TRACES_{setting} and OTEL_EXPORTER_OTLP_METRICS_{setting} differ: mcp-bridge sends both signals one way (telemetry is off)"
                ));
            }
            Ok(traces.is_some())
        };
        let use_traces = one_way("PROTOCOL", traces_protocol == metrics_protocol)?;
        let grpc = if use_traces { traces_protocol } else { metrics_protocol } == OtlpProtocol::Grpc;
        let file = |setting: &str, configured: &Option<std::path::PathBuf>| {
            let pick = |signal| {
                signal_var(signal, setting)
                    .map(|(_, v)| v.into())
                    .or_else(|| configured.clone())
            };
            let (t, m) = (pick("TRACES"), pick("METRICS"));
            Ok::<_, String>(if one_way(setting, t == m)? { t } else { m })
        };
        let tls = ClientFiles {
            roots: file("CERTIFICATE", &cfg.certificate)?,
            cert: file("CLIENT_CERTIFICATE", &cfg.client_certificate)?,
            key: file("CLIENT_KEY", &cfg.client_key)?,
        };
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(
                "a client certificate for the collector needs its key, and a key its certificate ([telemetry] client_certificate and client_key, or OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY); telemetry is off"
                    .into(),
            );
        }
        if traces.is_none() && metrics.is_none() {
            if cfg.enabled == Some(true) && base.is_none() && (cfg.traces || cfg.metrics) {
                return Err(
                    "[telemetry] enabled = true, but no collector is named: set [telemetry] endpoint or OTEL_EXPORTER_OTLP_ENDPOINT"
                        .into(),
                );
            }
            return Ok(None);
        }
        let ratio = var("OTEL_TRACES_SAMPLER_ARG").and_then(|v| v.parse::<f64>().ok());
        let sample_ratio = match var("OTEL_TRACES_SAMPLER").as_deref() {
            None => cfg.sample_ratio,
            Some("always_on" | "parentbased_always_on") => 1.0,
            Some("always_off" | "parentbased_always_off") => 0.0,
            Some("traceidratio" | "parentbased_traceidratio") => {
                ratio.filter(|r| (0.0..=1.0).contains(r)).unwrap_or(1.0)
            }
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER={other}: mcp-bridge knows always_on, always_off and traceidratio (parent-based in every case); telemetry is off"
                ));
            }
        };
        let mut headers: BTreeMap<String, String> = cfg.headers.clone();
        for (k, v) in pairs(&var("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default()) {
            headers.insert(k, v);
        }
        for (k, v) in &headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                return Err(format!(
                    "the OTLP header {k:?} is not a valid HTTP header (telemetry is off)"
                ));
            }
        }
        let millis = |k: &str, fallback: f64| {
            var(k)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0 && *v < 86_400_000.0)
                .map_or(Duration::from_secs_f64(fallback), |ms| {
                    Duration::from_secs_f64(ms / 1000.0)
                })
        };
        let mut resource: BTreeMap<String, String> = pairs(&var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default())
            .into_iter()
            .collect();
        resource.extend(cfg.resource_attributes.clone());
        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| resource.remove("service.name"))
            .unwrap_or_else(|| "mcp-bridge".to_owned());
        Ok(Some(Plan {
            traces,
            metrics,
            grpc,
            tls,
            headers: headers.into_iter().collect(),
            timeout: millis("OTEL_EXPORTER_OTLP_TIMEOUT", cfg.timeout),
            export_interval: millis("OTEL_METRIC_EXPORT_INTERVAL", cfg.export_interval),
            span_delay: millis("OTEL_BSP_SCHEDULE_DELAY", cfg.span_delay),
            max_queue: var("OTEL_BSP_MAX_QUEUE_SIZE")
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=1_000_000).contains(n))
                .unwrap_or(cfg.max_queue),
            sample_ratio,
            service_name,
            resource: resource.into_iter().collect(),
        }))
    }

    /// Where export goes, for `status` and logs: the traces URL, else the
    /// metrics one, without credentials or query (with gRPC: the collector,
    /// and the protocol).
    pub fn destination(&self) -> String {
        let url = self.traces.as_deref().or(self.metrics.as_deref()).unwrap_or_default();
        if self.grpc {
            let collector = [TRACES_GRPC, METRICS_GRPC]
                .into_iter()
                .find_map(|p| url.strip_suffix(p))
                .unwrap_or(url);
            format!("{} (gRPC)", redact(collector))
        } else {
            redact(url)
        }
    }
}

/// `k=v,k2=v2` (W3C baggage syntax, as `OTEL_EXPORTER_OTLP_HEADERS` and
/// `OTEL_RESOURCE_ATTRIBUTES` use it), values percent-decoded.
fn pairs(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|item| {
            let (k, v) = item.split_once('=')?;
            let k = k.trim();
            let v = percent_decode(v.trim());
            (!k.is_empty()).then(|| (k.to_owned(), v))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A URL without user info, query or fragment: safe to show.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(cfg: &TelemetryConfig, env: &[(&str, &str)], reg: Option<&str>) -> Result<Option<Plan>, String> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Plan::resolve(cfg, &|k| env.get(k).cloned(), reg.map(str::to_owned))
    }

    fn with_endpoint(e: &str) -> TelemetryConfig {
        TelemetryConfig {
            endpoint: Some(e.into()),
            ..Default::default()
        }
    }

    #[test]
    fn off_unless_a_collector_is_named() {
        assert_eq!(resolve(&TelemetryConfig::default(), &[], None), Ok(None));
        let on = resolve(&with_endpoint("http://otel:4318/"), &[], None)
            .unwrap()
            .unwrap();
        assert_eq!(on.traces.as_deref(), Some("http://otel:4318/v1/traces"));
        assert_eq!(on.metrics.as_deref(), Some("http://otel:4318/v1/metrics"));
        assert_eq!(on.service_name, "mcp-bridge");
        let reg = resolve(&TelemetryConfig::default(), &[], Some("https://corp/otlp"))
            .unwrap()
            .unwrap();
        assert_eq!(reg.metrics.as_deref(), Some("https://corp/otlp/v1/metrics"));
    }

    #[test]
    fn environment_over_config_over_registry_and_switches_win() {
        let cfg = with_endpoint("http://config:4318");
        let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")];
        let p = resolve(&cfg, &env, Some("http://registry")).unwrap().unwrap();
        assert_eq!(p.traces.as_deref(), Some("http://env:4318/v1/traces"));
        let p = resolve(&cfg, &[], Some("http://registry")).unwrap().unwrap();
        assert_eq!(p.traces.as_deref(), Some("http://config:4318/v1/traces"));
        // Signal URLs are used as they are.
        let env = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom")];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert_eq!(p.traces.as_deref(), Some("http://t:1/custom"));
        assert_eq!(p.metrics.as_deref(), Some("http://config:4318/v1/metrics"));
        // Off switches.
        assert_eq!(resolve(&cfg, &[("OTEL_SDK_DISABLED", "TRUE")], None), Ok(None));
        let off = TelemetryConfig {
            enabled: Some(false),
            ..cfg.clone()
        };
        assert_eq!(resolve(&off, &[], Some("http://registry")), Ok(None));
        let p = resolve(&cfg, &[("OTEL_TRACES_EXPORTER", "none")], None)
            .unwrap()
            .unwrap();
        assert_eq!((p.traces, p.metrics.is_some()), (None, true));
        let no_metrics = TelemetryConfig {
            metrics: false,
            ..cfg.clone()
        };
        assert!(resolve(&no_metrics, &[], None).unwrap().unwrap().metrics.is_none());
    }

    #[test]
    fn headers_resource_and_timings() {
        let mut cfg = with_endpoint("http://c:4318");
        cfg.headers.insert("x-team".into(), "a".into());
        cfg.resource_attributes
            .insert("deployment.environment".into(), "prod".into());
        let env = [
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x-team=b"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=bridge,team=data"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_BSP_SCHEDULE_DELAY", "not a number"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
        ];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert_eq!(
            p.headers,
            vec![("api-key".into(), "s=cret".into()), ("x-team".into(), "b".into())]
        );
        assert_eq!(p.service_name, "bridge");
        assert_eq!(
            p.resource,
            vec![
                ("deployment.environment".into(), "prod".into()),
                ("team".into(), "data".into())
            ]
        );
        assert_eq!(p.export_interval, Duration::from_millis(250));
        assert_eq!(p.span_delay, Duration::from_secs(5));
        assert_eq!(p.max_queue, 64);
        // Header values never reach Debug output.
        assert!(!format!("{p:?}").contains("cret"));
    }

    #[test]
    fn unusable_settings_are_named() {
        let cfg = with_endpoint("http://c:4318");
        let e = resolve(&cfg, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")], None).unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/json"), "{e}");
        let env = [("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")];
        let e = resolve(&cfg, &env, None).unwrap_err();
        assert!(e.contains("differ"), "{e}");
        let e = resolve(&cfg, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4318")], None).unwrap_err();
        assert!(e.contains("not an http(s) URL"), "{e}");
        let e = resolve(&cfg, &[("OTEL_EXPORTER_OTLP_HEADERS", "bad header=x")], None).unwrap_err();
        assert!(e.contains("bad header"), "{e}");
        let on = TelemetryConfig {
            enabled: Some(true),
            ..Default::default()
        };
        let e = resolve(&on, &[], None).unwrap_err();
        assert!(e.contains("no collector is named"), "{e}");
        let e = resolve(&cfg, &[("OTEL_TRACES_SAMPLER", "jaeger_remote")], None).unwrap_err();
        assert!(e.contains("jaeger_remote"), "{e}");
    }

    #[test]
    fn grpc_calls_the_services_at_the_collector_named() {
        let cfg = TelemetryConfig {
            protocol: OtlpProtocol::Grpc,
            ..with_endpoint("http://otel:4317/")
        };
        let p = resolve(&cfg, &[], None).unwrap().unwrap();
        assert!(p.grpc);
        assert_eq!(
            p.traces.as_deref(),
            Some("http://otel:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        );
        assert_eq!(
            p.metrics.as_deref(),
            Some("http://otel:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
        );
        assert_eq!(p.destination(), "http://otel:4317/ (gRPC)");
        // A signal's endpoint names its collector too, and the variables
        // override the config either way.
        let env = [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t:4317"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert_eq!(
            p.traces.as_deref(),
            Some("https://t:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        );
        let env = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert!(!p.grpc);
        assert_eq!(p.traces.as_deref(), Some("http://otel:4317/v1/traces"));
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ];
        let p = resolve(&TelemetryConfig::default(), &env, None).unwrap().unwrap();
        assert!(p.grpc && p.metrics.is_none());
        assert_eq!(p.destination(), "http://env:4317/ (gRPC)");
    }

    #[test]
    fn tls_files_come_from_the_environment_or_the_config() {
        let mut cfg = with_endpoint("https://c:4318");
        cfg.certificate = Some("/etc/ca.pem".into());
        let p = resolve(&cfg, &[], None).unwrap().unwrap();
        assert_eq!(p.tls.roots.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(p.tls.cert.is_none() && p.tls.key.is_none());
        let env = [
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/env/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/env/me.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env/me.key"),
        ];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert_eq!(
            p.tls,
            ClientFiles {
                roots: Some("/env/ca.pem".into()),
                cert: Some("/env/me.pem".into()),
                key: Some("/env/me.key".into()),
            }
        );
        let e = resolve(&cfg, &env[..2], None).unwrap_err();
        assert!(e.contains("needs its key"), "{e}");
        // One signal's own file: fine when only that signal goes, refused
        // when both go and the other's differs.
        let env = [("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/m/ca.pem")];
        let e = resolve(&cfg, &env, None).unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"), "{e}");
        let env = [
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/m/ca.pem"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ];
        let p = resolve(&cfg, &env, None).unwrap().unwrap();
        assert_eq!(p.tls.roots.as_deref(), Some(std::path::Path::new("/m/ca.pem")));
    }

    #[test]
    fn the_sampler_comes_from_the_environment_or_the_config() {
        let mut cfg = with_endpoint("http://c:4318");
        cfg.sample_ratio = 0.5;
        let ratio = |env: &[(&str, &str)]| resolve(&cfg, env, None).unwrap().unwrap().sample_ratio;
        assert_eq!(ratio(&[]), 0.5);
        assert_eq!(ratio(&[("OTEL_TRACES_SAMPLER", "always_off")]), 0.0);
        assert_eq!(ratio(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]), 1.0);
        let env = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ];
        assert_eq!(ratio(&env), 0.25);
        // An argument out of range samples everything, as the SDKs do.
        let env = [
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "7"),
        ];
        assert_eq!(ratio(&env), 1.0);
        assert_eq!(redact("https://u:p@c:4318/v1/traces?key=s"), "https://c:4318/v1/traces");
    }
}
