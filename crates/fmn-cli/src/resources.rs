//! `fmn resources`: what the configured prefix names, as described by infra/template.yaml.

use fmn_aws::template::Template;
use fmn_aws::ResourceNames;

pub fn run() -> anyhow::Result<()> {
    let names = ResourceNames::from_env();
    let template = Template::bundled(names.prefix())?;
    for q in &template.queues {
        println!("queue\t{}\t{}", q.logical_id, q.name);
    }
    for t in &template.tables {
        println!("table\t{}\t{}", t.logical_id, t.name);
    }
    for f in &template.functions {
        println!("function\t{}\t{}", f.logical_id, f.name);
        for s in &f.schedules {
            println!("schedule\t{}\t{}\t{}", f.logical_id, s.name, s.expression);
        }
    }
    Ok(())
}
