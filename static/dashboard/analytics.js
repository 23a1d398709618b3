// The analytics charts (Chart.js, served by this server); the numbers are in the page too.
(function () {
  const data = JSON.parse(document.getElementById('analytics-data').textContent);
  const css = getComputedStyle(document.documentElement);
  const accent = css.getPropertyValue('--accent').trim() || '#0066ff';
  if (!window.Chart) return;
  new Chart(document.getElementById('chartDays'), {
    type: 'bar',
    data: {
      labels: data.days.map((d) => d.day),
      datasets: [{ label: 'Calls', data: data.days.map((d) => d.calls), backgroundColor: accent }],
    },
    options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  new Chart(document.getElementById('chartReasons'), {
    type: 'doughnut',
    data: {
      labels: data.end_reasons.map((r) => r.end_reason),
      datasets: [{ data: data.end_reasons.map((r) => r.calls) }],
    },
    options: { maintainAspectRatio: false, animation: false },
  });
  window.thinnestCharts = Object.values(Chart.instances).length;
})();
