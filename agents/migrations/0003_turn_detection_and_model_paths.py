import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_recording_and_public_key_value"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="stt_model_path",
            field=models.CharField(
                blank=True,
                help_text="Model directory for the STT engine on the server (Vosk); empty = the server setting.",
                max_length=500,
            ),
        ),
        migrations.AddField(
            model_name="agent",
            name="llm_model",
            field=models.CharField(
                blank=True,
                help_text="A packaged model name (qwen2.5-0.5b, smollm2) or the path of a GGUF file on the server; empty = the server setting.",
                max_length=500,
            ),
        ),
        migrations.AddField(
            model_name="agent",
            name="turn_detection",
            field=models.CharField(
                choices=[
                    ("silence", "Silence only"),
                    ("smart_turn", "Smart Turn (waits out mid-sentence pauses)"),
                ],
                default="silence",
                help_text="How the agent decides that the caller has finished speaking.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="agent",
            name="turn_silence_ms",
            field=models.PositiveIntegerField(
                default=600,
                help_text="Silence after speech that ends the caller's turn. Lower answers sooner; higher lets callers pause mid-sentence.",
                validators=[
                    django.core.validators.MinValueValidator(200),
                    django.core.validators.MaxValueValidator(3000),
                ],
                verbose_name="end-of-turn silence (ms)",
            ),
        ),
    ]
