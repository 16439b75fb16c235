// The filter form: picking dates makes the period custom; a preset leaves
// the dates out of the URL, so that a shared link keeps meaning the preset.
document.addEventListener('DOMContentLoaded', () => {
  const form = document.querySelector('form.filters');
  if (!form) return;
  const range = form.querySelector('select[name=range]');
  const dates = form.querySelectorAll('input[type=date]');
  dates.forEach((d) => d.addEventListener('change', () => { range.value = 'custom'; }));
  form.addEventListener('submit', () => {
    if (range.value !== 'custom') dates.forEach((d) => { d.disabled = true; });
    form.querySelectorAll('select').forEach((s) => { if (s.value === '' && s.name !== 'range') s.disabled = true; });
  });
  // Charts follow their box when the window or the phone turns.
  window.addEventListener('resize', () => {
    document.querySelectorAll('[_echarts_instance_]').forEach((el) => {
      const c = window.echarts && echarts.getInstanceByDom(el);
      if (c) c.resize();
    });
  });
});
