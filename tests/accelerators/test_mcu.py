"""Microcontroller board presets (data sheets' SRAM / Flash) and the checks of the board file."""
import pytest

from accelerators.mcu import McuError, load_mcu, mcu_names, read_boards


@pytest.mark.parametrize("name,sram_kb,flash_kb", [
    ("stm32f746", 320, 1024),   # STM32F746xG: 320 kB SRAM, 1 MB Flash
    ("stm32h743", 512, 2048),   # STM32H743xI: 512 kB AXI SRAM counted, 2 MB Flash
    ("stm32f412", 256, 1024),   # STM32F412xG: 256 kB SRAM, 1 MB Flash
    ("stm32f411", 128, 512),
    ("nrf52840", 256, 1024),
])
def test_presets_state_the_data_sheet_numbers(name, sram_kb, flash_kb):
    b = load_mcu(name)
    assert (b.sram_kb, b.flash_kb) == (sram_kb, flash_kb)
    assert (b.sram_bytes, b.flash_bytes) == (sram_kb * 1024, flash_kb * 1024)


def test_names_are_case_and_separator_insensitive():
    assert load_mcu("STM32F746").key == load_mcu(" stm32f746 ").key == "stm32f746"
    assert load_mcu("raspberry_pi_pico").key == "raspberry-pi-pico"
    assert {"stm32f746", "stm32h743", "stm32f412"} <= set(mcu_names())


def test_an_unknown_board_is_one_error_listing_the_known_ones():
    with pytest.raises(McuError) as e:
        load_mcu("esp32")
    msg = str(e.value)
    assert msg.startswith("unknown MCU board 'esp32' (known: ") and "\n" not in msg
    assert all(n in msg for n in mcu_names())


@pytest.mark.parametrize("entry,needle", [
    ("{name: x, clock_mhz: 100, sram_kb: 0, flash_kb: 1}", "sram_kb"),
    ("{name: x, clock_mhz: 100, sram_kb: -5, flash_kb: 1}", "must be > 0"),
    ("{name: x, clock_mhz: 100, sram_kb: 1.0e+12, flash_kb: 1}", "sram_kb' must be <= 65,536"),
    ("{name: x, clock_mhz: 100, sram_kb: 256, flash_kb: .nan}", "flash_kb' must be a finite number"),
    ("{name: x, clock_mhz: 100, sram_kb: 256}", "flash_kb: missing field"),
    ("{name: x, clock_mhz: 100, sram_kb: 256, flash_kb: 1, eeprom_kb: 4}", "eeprom_kb: unknown field"),
    ("{name: x, clock_mhz: 0, sram_kb: 256, flash_kb: 1}", "clock_mhz"),
])
def test_board_file_bounds_are_checked(tmp_path, entry, needle):
    p = tmp_path / "boards.yaml"
    p.write_text(f"mine: {entry}\n")
    with pytest.raises(McuError) as e:
        read_boards(p)
    assert needle in str(e.value) and "boards.yaml: mine" in str(e.value)


def test_board_file_must_be_a_mapping_without_repeats(tmp_path):
    p = tmp_path / "boards.yaml"
    p.write_text("- stm32\n")
    with pytest.raises(McuError, match="expected a mapping"):
        read_boards(p)
    p.write_text("A_b: {name: x, clock_mhz: 1, sram_kb: 1, flash_kb: 1}\n"
                 "a-b: {name: y, clock_mhz: 1, sram_kb: 1, flash_kb: 1}\n")
    with pytest.raises(McuError, match="given twice"):
        read_boards(p)


def test_memory_command_with_a_board(capsys):
    from codesign.cli import main

    assert main(["memory", "--workload", "mobilenet_v2", "--mcu", "stm32f412"]) == 0
    out = capsys.readouterr().out
    # MobileNetV2 int8: 1372 kB layer by layer, 171.7 kB with the 4x4 patch stage; 3.4 MB of weights
    assert "layer by layer: peak 1372.0 kB at features.2.conv.0.0  does NOT fit 256 kB" in out
    assert "peak 171.7 kB" in out and "fits 256 kB (8.0x less)" in out
    assert "does NOT fit 1024 kB" in out.splitlines()[0]
    assert main(["memory", "--workload", "mobilenet_v2", "--mcu", "stm32f412", "--sram-kb", "2000"]) == 0
    assert "layer by layer: peak 1372.0 kB at features.2.conv.0.0  fits 2000 kB" in capsys.readouterr().out
    assert main(["memory", "--workload", "mobilenet_v2", "--mcu", "esp32"]) == 2
    err = capsys.readouterr().err
    assert "unknown MCU board 'esp32' (known: " in err and len(err.strip().splitlines()) == 1
