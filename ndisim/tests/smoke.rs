use ndisim::*;

#[test]
fn rawnic_loads_binds_and_unloads_clean() {
    let sim = Sim::builder().driver(rawnic_tests::rawnic_sys()).adapter("loopback").start().expect("start");
    let a = sim.adapter_id("loop0").unwrap();
    assert_eq!(sim.binding_state(a), BindingState::Running);
    assert_eq!(sim.protocol_name().as_deref(), Some("RAWNIC"));
    sim.pause(a).unwrap();
    sim.restart(a, &RestartSpec::default()).unwrap();
    sim.inject(a, &[&[0xffu8; 60][..]], &InjectOpts::default()).unwrap();
    let r = sim.unload();
    assert!(r.is_clean(), "{r}");
}
