//! `fermyon:spin/variables@2.0.0`: the component's variables, resolved at startup.
//! A name that is not a valid variable name is `invalid-name`; a valid name the
//! component does not define is `undefined`, as in Spin.

use crate::bindings::fermyon::spin2_0_0::variables as v2;
use crate::host_calls::Call;
use crate::manifest::validate_variable_name;
use crate::state::State;

impl v2::Host for State {
    async fn get(&mut self, name: String) -> Result<String, v2::Error> {
        self.calls.add(Call::Variables);
        validate_variable_name(&name).map_err(|e| v2::Error::InvalidName(e.to_string()))?;
        let app = &self.shared.app;
        app.variables.get(&name).cloned().ok_or_else(|| {
            v2::Error::Undefined(format!("no variable for {:?}.{name:?}", app.component_id))
        })
    }
}
