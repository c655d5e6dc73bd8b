//! The fallback providers of one session, resolved with their keys at session start, each
//! paired with its adapter and taken in the agent's order when a provider fails mid-call.

use crate::Providers;
use billing::{ServicePlan, SessionPlan};
use std::collections::VecDeque;
use std::sync::Arc;

pub(crate) struct Failover {
    pub stt: VecDeque<(ServicePlan, Arc<dyn stt::Stt>)>,
    pub llm: VecDeque<(ServicePlan, Arc<dyn llm::Llm>)>,
    pub tts: VecDeque<(ServicePlan, Arc<dyn tts::Tts>)>,
}

impl Failover {
    /// A fallback whose provider this build has no adapter for is left out.
    pub(crate) fn from_plan(plan: &SessionPlan, providers: &Providers) -> Self {
        fn pair<A: ?Sized>(
            plans: &[ServicePlan],
            adapters: &std::collections::HashMap<String, Arc<A>>,
        ) -> VecDeque<(ServicePlan, Arc<A>)> {
            plans.iter().filter_map(|p| adapters.get(&p.provider).map(|a| (p.clone(), a.clone()))).collect()
        }
        Self {
            stt: pair(&plan.fallbacks.stt, &providers.stt),
            llm: pair(&plan.fallbacks.llm, &providers.llm),
            tts: pair(&plan.fallbacks.tts, &providers.tts),
        }
    }
}
