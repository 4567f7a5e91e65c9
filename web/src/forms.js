// Filling a form's choices from the engine's names (the core's serde names), with labels for
// the ones a person reads differently.
export function fillSelect(select, values, labels = {}) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(labels[v] ?? v, v)));
  if (values.includes(keep)) select.value = keep;
}
