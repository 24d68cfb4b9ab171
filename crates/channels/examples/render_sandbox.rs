//! What rendering in the sandbox costs: the same message rendered N times in this thread
//! and through a [`RenderSandbox`] of the `flywheel` binary (two workers, two client
//! threads, as the server runs it), each a typical email (subject, HTML with a 20-line
//! cart, text). Prints renders/s of both and their ratio.
//!
//! Run: `cargo run --release -p flywheel-channels --example render_sandbox -- target/release/flywheel 20000`

use std::sync::Arc;
use std::time::Instant;

use flywheel_channels::sandbox::WORKER_ARG;
use flywheel_channels::{RenderLimits, RenderSandbox, Renderer, TemplateSource};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: render_sandbox FLYWHEEL_BINARY [N]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let source = TemplateSource {
        subject: Some("{{ profile.name }}，您的購物車還有 {{ cart.items|length }} 件商品".into()),
        html: Some(
            "<p>{{ profile.name }}，您好</p><ul>{% for i in cart.items %}<li><a href=\"{{ i.url }}\">{{ i.title }}</a> ¥{{ i.price_yuan }}</li>{% endfor %}</ul><p>合計 ¥{{ cart.total_yuan }}</p><a href=\"{{ links.unsubscribe }}\">退訂</a>"
                .into(),
        ),
        text: "{{ profile.name }}：購物車 {{ cart.items|length }} 件，合計 {{ cart.total_yuan }} 元".into(),
    };
    let items: Vec<_> = (1..=20)
        .map(|i| json!({"title": format!("商品 {i}"), "url": format!("https://shop.example/p/{i}"), "price_yuan": "99.00"}))
        .collect();
    let vars = json!({"profile": {"name": "王小明"}, "cart": {"items": items, "total_yuan": "1980.00"},
                      "links": {"unsubscribe": "https://shop.example/u/x"}});
    let limits = RenderLimits::default();
    let rate = |renderer: Renderer| {
        let renderer = Arc::new(renderer);
        let started = Instant::now();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (r, s, v) = (renderer.clone(), source.clone(), vars.clone());
                std::thread::spawn(move || {
                    for _ in 0..n / 2 {
                        if let Err(e) = r.render(&s, &v) {
                            eprintln!("render failed: {e}");
                            std::process::exit(1);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    let in_process = rate(Renderer::in_process(limits));
    let sandbox = Renderer::Sandboxed(Arc::new(RenderSandbox::new(
        program.into(),
        vec![WORKER_ARG.to_string()],
        limits,
        2,
    )));
    let sandboxed = rate(sandbox);
    println!("in-process: {in_process:.0} renders/s");
    println!("sandboxed:  {sandboxed:.0} renders/s");
    println!("sandboxed/in-process: {:.2}", sandboxed / in_process);
}
