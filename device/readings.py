"""GLS records as the MQTT contract's WireReadings: raw meter fields beside the instant."""

from __future__ import annotations

from core.contract import WireReading
from core.units import Unit
from core.vocabulary import MealTag
from core.vocabulary import SampleLocation as VocabLocation
from core.vocabulary import SampleType as VocabSampleType
from core.vocabulary import SensorStatus as VocabStatus
from device.clock import ClockCorrection
from device.gls import ConcentrationUnit, GlsError, Meal, SensorStatus
from device.gls.wire import snake_name
from device.session import MeterRecord

_MEALS: dict[Meal, MealTag] = {
    Meal.BEFORE_MEAL: MealTag.BEFORE_MEAL,
    Meal.AFTER_MEAL: MealTag.AFTER_MEAL,
    Meal.FASTING: MealTag.FASTING,
    Meal.CASUAL: MealTag.CASUAL,
    Meal.BEDTIME: MealTag.BEDTIME,
}


class ReadingError(ValueError):
    """A record that cannot become a reading (no time, no value); kept in the bridge log."""

    def __init__(self, sequence_number: int, reason: str) -> None:
        super().__init__(f"record {sequence_number}: {reason}")
        self.sequence_number = sequence_number
        self.reason = reason


def to_wire(record: MeterRecord, correction: ClockCorrection) -> WireReading:
    m = record.measurement
    if not m.base_time.is_known:
        raise ReadingError(m.sequence_number, f"meter time not known ({m.base_time})")
    try:
        user_facing = m.user_facing_time()
    except GlsError as exc:
        raise ReadingError(m.sequence_number, str(exc)) from exc
    if m.unit is ConcentrationUnit.KG_PER_L:
        value, unit = m.mg_dl, Unit.MG_DL
    else:
        value, unit = m.mmol_l, Unit.MMOL_L
    if value is None:
        shown = "no concentration" if m.concentration is None else str(m.concentration)
        raise ReadingError(m.sequence_number, f"no glucose value ({shown})")
    context: dict[str, object] = {}
    if correction.skew is not None:
        context["meter_clock_skew_s"] = int(correction.skew.total_seconds())
    meal = carbs = None
    c = record.context
    if c is not None:
        meal = _MEALS.get(c.meal) if c.meal is not None else None
        grams = c.carbohydrate_grams
        carbs = float(grams) if grams is not None else None
        if c.exercise_duration_s is not None:
            context["exercise_duration_s"] = c.exercise_duration_s
            context["exercise_intensity_pct"] = c.exercise_intensity_pct
        if c.medication_id is not None and c.medication is not None:
            context["medication"] = snake_name(c.medication_id)
            context["medication_amount"] = str(c.medication)
            context["medication_unit"] = c.medication_unit.symbol
    status = m.sensor_status or SensorStatus(0)
    return WireReading(
        sequence_number=m.sequence_number,
        meter_time=m.base_time.to_datetime(),
        time_offset_minutes=m.time_offset_minutes,
        measured_at=correction.instant(user_facing),
        value=round(value, 2),
        unit=unit,
        sample_type=VocabSampleType(snake_name(m.sample_type))
        if m.sample_type is not None
        else None,
        sample_location=(
            VocabLocation(snake_name(m.sample_location)) if m.sample_location is not None else None
        ),
        sensor_status=[VocabStatus(snake_name(s)) for s in SensorStatus if s in status],
        raw_record=bytes(m),
        raw_context=bytes(c) if c is not None else None,
        meal=meal,
        carbohydrate_g=carbs,
        context=context or None,
    )
