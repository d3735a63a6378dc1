// The nutrition page's script (a file of its own: the pages' Content-Security-Policy allows
// no inline script).
"use strict";
(async () => {
  const data = await GB.load("nutrition");
  if (!data) return;
  await Promise.all([GB.plot("fig-rise", data.figures.rise), GB.plot("fig-days", data.figures.days)]);
  GB.table("pairs", data.pairs, [["time", "time"], ["meal_type", "meal_type"], ["before", "before"],
    ["after", "after"], ["rise", "rise"], ["carbs", "carbs"]]);
  if (data.unpaired.length) {
    document.getElementById("unpaired-section").hidden = false;
    GB.table("unpaired", data.unpaired, [["time", "time"], ["meal_type", "meal_type"],
      ["before", "before"], ["after", "after"], ["carbs", "carbs"]]);
  }
  GB.ready();
})();
